"""Helpers for tests that start real ROS 2 processes on an isolated DDS domain."""
from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / 'install'
# REALRL_TEST_DOMAIN_BASE pins the first domain (parallel sessions on one host each take their own
# range); without it, the process id spreads concurrent pytest runs apart.
_base = os.environ.get('REALRL_TEST_DOMAIN_BASE')
_domains = itertools.count(int(_base) if _base else 40 + os.getpid() % 50)


def require_workspace():
    if not (INSTALL / 'realrl_interfaces').is_dir():
        pytest.skip('the colcon workspace is not built; run scripts/setup.sh')


def next_domain_id() -> int:
    """A ROS_DOMAIN_ID no other test in this session uses (0..232 are valid)."""
    return next(_domains) % 200 + 20


def isolate(domain_id: int) -> None:
    """Point this process's ROS 2 at a private, localhost-only domain."""
    os.environ['ROS_DOMAIN_ID'] = str(domain_id)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'


FASTDDS_TOOL = Path(sys.prefix) / 'tools' / 'fastdds' / 'fastdds.py'
"""Fast DDS's command-line tool, as the wheels install it."""


def clean_dds_shm() -> str:
    """Remove the shared-memory segments and ports of Fast DDS participants that no process
    holds any more (``fastdds shm clean``, which checks each one's lock): a SIGKILLed node
    leaves its own in /dev/shm, and a day of crash tests left 2,221 files (453 MB) there.
    Returns the tool's report; '' where the tool is not installed."""
    if not FASTDDS_TOOL.exists():
        return ''
    done = subprocess.run([sys.executable, str(FASTDDS_TOOL), 'shm', 'clean'],
                          capture_output=True, text=True, timeout=120)
    return done.stdout


def executable(package: str, name: str) -> str:
    path = INSTALL / package / 'lib' / package / name
    if not path.exists():
        pytest.skip(f'{path} not built; run scripts/setup.sh')
    return str(path)


class Proc:
    """A node process that is always stopped: SIGINT, then SIGKILL of its group."""

    def __init__(self, cmd: list[str], log: Path, env: dict | None = None):
        self.log_path = log
        self._log = open(log, 'wb')
        self.p = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                  env=env or os.environ.copy(), start_new_session=True)

    def kill(self, sig=signal.SIGKILL) -> None:
        try:
            os.killpg(self.p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 5.0) -> int:
        """SIGINT, then SIGKILL after ``timeout``; a node still running by then is first
        asked for its threads' stacks (SIGUSR1, see node_main), which land in its log."""
        if self.p.poll() is None:
            self.kill(signal.SIGINT)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.p.pid, signal.SIGUSR1)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.p.wait(1.0)
        self.kill(signal.SIGKILL)
        code = self.p.wait()
        self._log.close()
        return code

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors='replace')


def wait_for(predicate, timeout: float, step: float = 0.05, spin=None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if spin is not None:
            spin(step)
        else:
            time.sleep(step)
        if predicate():
            return True
    return predicate()
