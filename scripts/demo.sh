#!/usr/bin/env bash
# Sets up realrl (first run: a few minutes) and runs the simulated training demo:
# SAC learns to reach targets with a MuJoCo arm through real ROS 2 nodes, and stops when
# 90 % of the last 20 episodes succeed. Extra arguments go to `realrl train`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# Keep DDS discovery on this machine unless the user chose otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
exec .venv/bin/realrl train --config config/reach_sim.yaml "$@"
