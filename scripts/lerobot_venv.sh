#!/usr/bin/env bash
# Creates .venv-lerobot: LeRobot 0.4.2 (dataset format v3.0) in its own Python 3.11 venv, with the
# pins of requirements-lerobot.txt, so test/unit/replay/test_lerobot_own_class.py can open our
# LeRobotDataset v3.0 export with LeRobot's own LeRobotDataset class, and
# test/unit/test_lerobot_policy_own.py can serve an ACT policy through actors/lerobot_policy.py.
# Idempotent: a second run with the same pins only compares a fingerprint. Optional:
# LEROBOT_TORCH_INDEX=<index of CPU torch builds> (or first argument) installs torch/torchvision
# +cpu from there instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv-lerobot"
TORCH_INDEX="${1:-${LEROBOT_TORCH_INDEX:-}}"
LEROBOT=lerobot==0.4.2
say() { echo "lerobot_venv: $*"; }

STAMP="$VENV/.realrl-requirements"
want="$( (cat requirements-lerobot.txt; echo "$LEROBOT $TORCH_INDEX") | sha256sum | cut -c1-16)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  say "up to date"
  exit 0
fi
[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PY" -m venv "$VENV"; }
pip_install() {
  # (the filter drops pip's notes about this machine's unused local index folders)
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
start=$SECONDS
if [ -n "$TORCH_INDEX" ]; then
  say "installing CPU torch from the given index"
  pip_install --index-url "$TORCH_INDEX" torch==2.7.1+cpu torchvision==0.22.1+cpu
fi
say "installing $LEROBOT and what loading a dataset needs"
pip_install -r requirements-lerobot.txt
pip_install --no-deps "$LEROBOT"
"$VENV/bin/python" -c 'from lerobot.datasets.lerobot_dataset import CODEBASE_VERSION as v
assert v == "v3.0", v'
echo "$want" > "$STAMP"
say "ready in $((SECONDS - start)) s ($(du -sh "$VENV" | cut -f1))"
