"""Shared plumbing of the benchmarks: the command line, the workspace, the result line.

Convention: `python bench/<name>.py [--quick]` runs one benchmark, prints its figures and
the baseline measured in the same run, and ends with ONE JSON line holding them.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REALRL = ROOT / '.venv' / 'bin' / 'realrl'
for pkg in sorted((ROOT / 'src').iterdir()):
    if (pkg / 'setup.py').exists():
        sys.path.insert(0, str(pkg))


def parse(description: str, extra=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument('--quick', action='store_true', help='a short version (seconds to a minute)')
    if extra:
        extra(p)
    return p.parse_args()


def require_workspace() -> None:
    if not REALRL.exists():
        sys.exit('bench: the workspace is not set up; run scripts/setup.sh first')


def bench_env(domain_id: int) -> dict:
    """This process's environment on ROS domain ``domain_id`` (or REALRL_BENCH_DOMAIN, if set,
    so that benches run side by side keep apart), localhost discovery only."""
    env = os.environ.copy()
    domain_id = int(env.get('REALRL_BENCH_DOMAIN', domain_id))
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    return env


def run_realrl(args: list[str], env: dict, log: Path, timeout_s: float) -> int:
    """Run `realrl` to completion (SIGTERM, then SIGKILL of its group, at the timeout)."""
    with open(log, 'wb') as f:
        p = subprocess.Popen([str(REALRL), *args], stdout=f, stderr=subprocess.STDOUT, env=env,
                             cwd=ROOT, start_new_session=True)
        try:
            return p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
            try:
                return p.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                return p.wait()


def percentile(values, q: float) -> float:
    import numpy as np
    return (float(np.percentile(np.asarray(values, dtype=float), q)) if len(values)
            else float('nan'))


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def start_process(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    """A node process in its own session (process group), output to log."""
    with open(log, 'ab') as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop_process(p: subprocess.Popen, grace_s: float = 5.0) -> int:
    """SIGINT to the process group, then SIGKILL of the group; returns the exit code."""
    for sig, wait in ((signal.SIGINT, grace_s), (signal.SIGKILL, None)):
        if p.poll() is None or sig == signal.SIGKILL:
            try:
                os.killpg(p.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            return p.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return p.wait()
