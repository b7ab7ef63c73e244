"""Starts the graph's processes, restarts those that may be restarted, stops them all.

Each node runs in its own session (process group), so stopping it stops anything it
started too. ``stop_all`` sends SIGINT (nodes shut down cleanly and release their DDS
shared memory), then SIGTERM, then SIGKILL, and finally removes the Fast DDS
shared-memory files that processes killed along the way left behind.

If the launcher itself dies (even by SIGKILL) its nodes do not outlive it: an orphan guard
process (orphan_guard.py), told of every node, stops them when its pipe from the launcher
closes.

A node with ``standby: true`` has a second process waiting with its code imported
(standby.py): a restart hands it the node's place at once, and a new standby is started
``STANDBY_DELAY_S`` later, so that its imports do not compete with the recovery. The pids of
the running nodes are kept in ``<log_dir>/nodes.json`` (how the chaos harness tells a node
from its standby, whose command line names the same node).
"""
from __future__ import annotations

import json
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
from realrl_bringup.standby import GO, entry_point
from realrl_common.config import BAD_CONFIG_EXIT

STANDBY_DELAY_S = 15.0
"""After a node's start (or its standby's promotion), how long before a new standby starts."""
NODES_FILE = 'nodes.json'


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


def standby_command(spec: NodeSpec, command: list[str]) -> list[str]:
    """The command of a standby of the node that ``command`` starts (standby.py)."""
    return [sys.executable, '-m', 'realrl_bringup.standby',
            entry_point(spec.package, spec.executable), *command]


@dataclass
class Managed:
    """One supervised node: its command, log, current process, starts and exit codes."""

    spec: NodeSpec
    command: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)
    standby_command: list[str] | None = None
    """The command of its standby process (None: it has none)."""
    standby: subprocess.Popen | None = None
    standby_due: float = 0.0
    """When (time.monotonic) to start the next standby."""
    promotions: int = 0
    """Restarts that took over a waiting standby."""

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

    def add(self, spec: NodeSpec, command: list[str],
            standby_command: list[str] | None = None) -> Managed:
        m = Managed(spec, command, self.log_dir / f'{spec.label}.log',
                    standby_command=standby_command)
        self.nodes[spec.fqn] = m
        return m

    def start(self, m: Managed) -> None:
        """Start the node: its waiting standby if it has one alive, else a new process."""
        if m.standby is not None and m.standby.poll() is None and self._promote(m.standby):
            m.proc, m.standby = m.standby, None
            m.promotions += 1
        else:
            self._drop_standby(m)
            m.proc = self._spawn(m.command, m.log_path)
        m.starts += 1
        m.standby_due = time.monotonic() + STANDBY_DELAY_S
        self._write_nodes()

    def _spawn(self, command: list[str], log_path: Path,
               stdin=subprocess.DEVNULL) -> subprocess.Popen:
        log = open(log_path, 'ab')
        try:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=stdin,
                                    env=self.env, start_new_session=True)
        finally:
            log.close()
        self._tell_guard(f'+{proc.pid}')
        return proc

    @staticmethod
    def _promote(standby: subprocess.Popen) -> bool:
        """Tell a waiting standby to become the node; False if it cannot hear it."""
        try:
            standby.stdin.write(GO)
            standby.stdin.close()
        except (BrokenPipeError, ValueError):
            return False
        return True

    def _drop_standby(self, m: Managed) -> None:
        """Stop and reap the node's standby, if any."""
        if m.standby is None:
            return
        _signal_group(m.standby, signal.SIGKILL)
        m.standby.wait()
        self._tell_guard(f'-{m.standby.pid}')
        m.standby = None

    def tend_standbys(self, now: float | None = None) -> None:
        """Replace standbys that died, and start those that are due, for running nodes."""
        now = time.monotonic() if now is None else now
        for m in self.nodes.values():
            if m.standby_command is None:
                continue
            if m.standby is not None and m.standby.poll() is not None:
                self._tell_guard(f'-{m.standby.pid}')
                m.standby, m.standby_due = None, now + STANDBY_DELAY_S
            if m.standby is None and m.running and now >= m.standby_due:
                m.standby = self._spawn(m.standby_command, m.log_path, stdin=subprocess.PIPE)

    def _write_nodes(self) -> None:
        """<log_dir>/nodes.json: fully qualified name -> pid of each running node."""
        table = {fqn: m.proc.pid for fqn, m in self.nodes.items() if m.proc is not None}
        tmp = self.log_dir / f'.{NODES_FILE}.tmp'
        tmp.write_text(json.dumps(table))
        tmp.replace(self.log_dir / NODES_FILE)

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
        if events:
            self._write_nodes()
        self.tend_standbys()
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
        for m in self.nodes.values():  # a standby never was a node: nothing to shut down
            self._drop_standby(m)
            m.standby_command = None
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
