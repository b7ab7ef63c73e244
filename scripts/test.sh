#!/usr/bin/env bash
# Sets up realrl and runs the whole test suite (unit, ROS 2 nodes over real DDS, system).
# Extra arguments go to pytest, e.g. scripts/test.sh test/unit -k replay
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/system_packages.sh
bash scripts/setup.sh
# optional: LeRobot's own class for the export check; if it cannot install, that test skips
# and says which script to run
bash scripts/lerobot_venv.sh || echo "test: scripts/lerobot_venv.sh failed; the LeRobot check will skip"
# shellcheck disable=SC1091
source scripts/env.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
exec python -m pytest "${@:-test}"
