"""Starts the graph's processes, restarts those that may be restarted, stops them all.

Each node runs in its own session (process group), so stopping it stops anything it
started too. ``stop_all`` sends SIGINT (nodes shut down cleanly and release their DDS
shared memory), then SIGTERM, then SIGKILL, and finally removes the Fast DDS
shared-memory files that processes killed along the way left behind.

If the launcher itself dies (even by SIGKILL) its nodes do not outlive it: an orphan guard
process (orphan_guard.py), told of every node, stops them when its pipe from the launcher
closes.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_prefix

from realrl_bringup import orphan_guard
from realrl_bringup.graph import NodeSpec
from realrl_bringup.shm_cleanup import files_of, remove_orphan_segments
from realrl_common.config import BAD_CONFIG_EXIT


def executable_path(spec: NodeSpec) -> str:
    """Path of the node's installed executable; FileNotFoundError saying how to
    build it if the package or the executable is missing."""
    try:
        prefix = get_package_prefix(spec.package)
    except PackageNotFoundError:
        raise FileNotFoundError(f'package {spec.package!r} is not installed; run scripts/setup.sh '
                                f'(colcon build) and source install/setup.bash') from None
    path = Path(prefix, 'lib', spec.package, spec.executable)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f'{path} is missing; rebuild with scripts/setup.sh')
    return str(path)


def ros_args(spec: NodeSpec, params_file: Path | None) -> list[str]:
    """The --ros-args that give the node its name, namespace and parameters file."""
    args = ['--ros-args', '-r', f'__node:={spec.name}']
    if spec.namespace:
        args += ['-r', f'__ns:=/{spec.namespace}']
    if params_file is not None:
        args += ['--params-file', str(params_file)]
    return args


@dataclass
class Managed:
    """One supervised node: its command, log, current process, starts and exit codes."""

    spec: NodeSpec
    command: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def last_words(self) -> str:
        """The last line the node wrote to its log ('' if none): after a ConfigError, the
        message naming the key and the fix."""
        try:
            lines = self.log_path.read_text(errors='replace').splitlines()
        except OSError:
            return ''
        return next((line.strip() for line in reversed(lines) if line.strip()), '')


class Supervisor:
    """Starts, restarts and stops the graph's node processes, each with its own log."""

    def __init__(self, log_dir: Path, env: dict | None = None, max_restarts: int = 5):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = dict(env if env is not None else os.environ)
        self.max_restarts = max_restarts
        self.nodes: dict[str, Managed] = {}
        self.started_at = time.time()
        self.shm_seen: set[str] = set()
        """Fast DDS shared-memory files our processes were seen using (see note_shm)."""
        self._guard: subprocess.Popen | None = None

    def add(self, spec: NodeSpec, command: list[str]) -> Managed:
        m = Managed(spec, command, self.log_dir / f'{spec.label}.log')
        self.nodes[spec.fqn] = m
        return m

    def start(self, m: Managed) -> None:
        log = open(m.log_path, 'ab')
        try:
            m.proc = subprocess.Popen(m.command, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=self.env,
                                      start_new_session=True)
        finally:
            log.close()
        m.starts += 1
        self._tell_guard(f'+{m.proc.pid}')

    def start_all(self) -> None:
        for m in self.nodes.values():
            self.start(m)

    def poll(self) -> list[tuple[Managed, int, bool]]:
        """Reap exited nodes; returns (node, exit code, restarted) for each new exit."""
        events = []
        for m in self.nodes.values():
            if m.proc is None or m.proc.poll() is None:
                continue
            code = m.proc.returncode
            m.exits.append(code)
            self._tell_guard(f'-{m.proc.pid}')
            m.proc = None
            restart = (m.spec.restart == 'on_failure' and code not in (0, BAD_CONFIG_EXIT)
                       and m.starts <= self.max_restarts)
            if restart:
                self.start(m)
            events.append((m, code, restart))
        return events

    def note_shm(self) -> None:
        """Remember which shared-memory files the nodes use, so that those of a node that
        dies without releasing them can be removed later."""
        for m in self.nodes.values():
            if m.running:
                self.shm_seen |= files_of(m.proc.pid)

    def remove_orphans(self, ignore_pids: frozenset = frozenset()) -> list[str]:
        return remove_orphan_segments(self.started_at, seen=self.shm_seen,
                                      ignore_pids=ignore_pids)

    def stop_all(self, grace_s: float = 8.0) -> dict[str, int]:
        """Stop every node; returns each node's exit code. Leaves no process behind."""
        alive = [m for m in self.nodes.values() if m.running]
        for sig, wait in ((signal.SIGINT, grace_s), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            for m in alive:
                _signal_group(m.proc, sig)
            deadline = time.monotonic() + wait
            while alive and time.monotonic() < deadline:
                alive = [m for m in alive if m.proc.poll() is None]
                time.sleep(0.05)
            if not alive:
                break
        codes = {}
        for fqn, m in self.nodes.items():
            if m.proc is not None:
                _signal_group(m.proc, signal.SIGKILL)  # anything its children left running
                try:
                    m.proc.wait(10)
                except subprocess.TimeoutExpired:  # stuck in the kernel (e.g. disk I/O)
                    print(f'realrl: {fqn} (pid {m.proc.pid}) has not exited 10 s after SIGKILL; '
                          'leaving it to the kernel', file=sys.stderr, flush=True)
                codes[fqn] = m.proc.returncode
                m.exits.append(m.proc.returncode)
                self._tell_guard(f'-{m.proc.pid}')
                m.proc = None
        self._stop_guard()
        self.remove_orphans()
        return codes

    def _tell_guard(self, line: str) -> None:
        """Tell the orphan guard of a node started (+pid) or reaped (-pid); start it first."""
        if self._guard is None:
            self._guard = subprocess.Popen(
                [sys.executable, orphan_guard.__file__], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, start_new_session=True, env=self.env)
        try:
            self._guard.stdin.write(f'{line}\n'.encode())
            self._guard.stdin.flush()
        except (BrokenPipeError, ValueError):  # the guard died: nodes may outlive a crash
            print(f'realrl: the orphan guard (pid {self._guard.pid}) is gone; nodes started '
                  'from now on are not stopped if realrl is killed', file=sys.stderr, flush=True)

    def _stop_guard(self) -> None:
        """Every node is stopped and reaped: the guard exits with nothing to stop."""
        if self._guard is not None:
            try:
                self._guard.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self._guard.wait(5)
            except subprocess.TimeoutExpired:
                self._guard.kill()
                self._guard.wait()
            self._guard = None


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
