# Source this to use the realrl workspace in a shell: the venv's ROS 2 and install/.
_REALRL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$_REALRL_ROOT/.venv/bin:$PATH"
export AMENT_PREFIX_PATH="$_REALRL_ROOT/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# colcon's setup scripts read unset variables; allow that while they run, even under set -u.
case $- in *u*) _REALRL_NOUNSET=1; set +u ;; *) _REALRL_NOUNSET= ;; esac
# shellcheck disable=SC1091
source "$_REALRL_ROOT/install/setup.bash"
[ -n "$_REALRL_NOUNSET" ] && set -u
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Participants announce every 0.5 s instead of 3 s: restarted nodes are found sooner.
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_REALRL_ROOT/config/fastdds.xml}"
unset _REALRL_ROOT _REALRL_NOUNSET
