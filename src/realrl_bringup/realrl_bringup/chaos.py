"""Chaos for a running graph: SIGKILL its nodes on a schedule, then check what must hold.

The harness finds a run's node processes by their command lines (every node gets
``__node:=`` and ``__ns:=`` remaps and a parameters file in the run folder), kills one at a
time, and follows the run's own status lines to see when data flows again. What must hold
afterwards is checked on the replay store itself:

- no acknowledged transition lost: each robot's sequence numbers are gap-free from its first
  to its last stored one (a driver forgets a transition only once the store acknowledged it
  as durable, and a restarted driver continues from the store's committed sequence);
- none stored twice;
- no node process outlives the launcher.

No ROS imports: it reads /proc, the run's log and the store.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from realrl_bringup.supervisor import NODES_FILE

STATUS = re.compile(r'^\[\s*([\d.]+)s\] episodes\s+(\d+) \| .*? \| stored\s+(\d+) \| '
                    r'updates\s+(\d+) \| policy v(\d+)')


@dataclass(frozen=True)
class Status:
    """One status line of `realrl train`."""

    t: float
    episodes: int
    stored: int
    updates: int
    policy_version: int


def status_lines(text: str) -> list[Status]:
    """The status lines of a `realrl train` log, in order."""
    out = []
    for line in text.splitlines():
        m = STATUS.match(line)
        if m:
            out.append(Status(float(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5])))
    return out


def node_processes(run_dir: Path) -> dict[str, int]:
    """Fully qualified node name -> pid of the run's live node processes: from the
    launcher's table (logs/nodes.json) where it keeps one, else by command line."""
    table = Path(run_dir) / 'logs' / NODES_FILE
    try:
        listed = json.loads(table.read_text())
    except (OSError, ValueError):
        listed = None
    found = {}
    marker = str(run_dir)
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            args = Path(f'/proc/{pid}/cmdline').read_bytes().decode(errors='replace').split('\0')
        except OSError:
            continue
        if not any(marker in a for a in args):
            continue
        name = next((a.split(':=', 1)[1] for a in args if a.startswith('__node:=')), None)
        if name is None:
            continue
        ns = next((a.split(':=', 1)[1] for a in args if a.startswith('__ns:=')), '')
        fqn = f'{ns.rstrip("/")}/{name}'
        if listed is None or listed.get(fqn) == int(pid):  # not a node's standby
            found[fqn] = int(pid)
    return found


def run_processes(run_dir: Path) -> list[int]:
    """Every process whose command line names the run folder (this one excluded)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            cmd = Path(f'/proc/{pid}/cmdline').read_bytes().decode(errors='replace')
        except OSError:
            continue
        if str(run_dir) in cmd and int(pid) != os.getpid():
            pids.append(int(pid))
    return pids


@dataclass
class Kill:
    """One SIGKILL and what the run did after it."""

    node: str
    pid: int
    at: float
    """Monotonic time of the kill."""
    log_offset: int
    """Length of the run's log at the kill: status lines after it are the recovery."""
    before: Status | None = None
    """The last status line before the kill."""
    recovered_s: float | None = None
    """Seconds from the kill to data flowing again (stored rows growing by min_rows, and for
    the learner, its update count growing past its count at restart); None if it did not."""


@dataclass
class Chaos:
    """Kills a random node of a run every ``every_s``, and measures each recovery."""

    run_dir: Path
    log: Path
    every_s: float
    seed: int = 0
    targets: tuple[str, ...] = ()
    """fqns to choose from (empty: every node of the run)."""
    min_rows: int = 10
    kills: list[Kill] = field(default_factory=list)

    def __post_init__(self):
        self._rng = random.Random(self.seed)
        self._next = time.monotonic() + self.every_s

    def tick(self) -> Kill | None:
        """Kill the next node if its time has come; the kill or None."""
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.every_s
        alive = node_processes(self.run_dir)
        choices = sorted(n for n in alive if not self.targets or n in self.targets)
        if not choices:
            return None
        node = self._rng.choice(choices)
        return self.kill(node, alive[node])

    def kill(self, node: str, pid: int) -> Kill:
        text = self.log.read_bytes()
        before = status_lines(text.decode(errors='replace'))
        os.kill(pid, signal.SIGKILL)
        k = Kill(node, pid, time.monotonic(), len(text), before[-1] if before else None)
        self.kills.append(k)
        return k

    def measure(self) -> None:
        """Fill in recovered_s for every kill from the status lines logged after it."""
        text = self.log.read_bytes()
        for k in self.kills:
            after = status_lines(text[k.log_offset:].decode(errors='replace'))
            k.recovered_s = recovery_s(k.before, after, k.node, self.min_rows)


def recovery_s(before: Status | None, after: list[Status], node: str,
               min_rows: int) -> float | None:
    """Seconds from the last status line before a kill to the first line after it where data
    flows again: min_rows more stored than before the kill, and for the learner, its update
    count grown past its lowest after the kill (a restarted learner resumes from its
    checkpoint, so its count may first drop)."""
    if before is None or not after:
        return None
    floor = None
    for s in after:
        floor = s.updates if floor is None else min(floor, s.updates)
        learning = s.updates > floor if node.endswith('learner') else True
        if s.stored >= before.stored + min_rows and learning:
            return s.t - before.t
    return None


def store_invariants(store: Path) -> dict:
    """Rows, and lost (sequence gaps) and duplicated transitions over all robots, read from
    the store."""
    from realrl_replay.reader import ReplayReader
    from realrl_replay.schema import ROBOT_ID, SEQ

    reader = ReplayReader(store)
    reader.refresh()
    rows = reader.read_range(0, reader.count, [ROBOT_ID, SEQ])
    lost = duplicated = 0
    for code in np.unique(rows[ROBOT_ID]):
        seq = rows[SEQ][rows[ROBOT_ID] == code]
        unique = np.unique(seq)
        duplicated += int(len(seq) - len(unique))
        if len(unique):
            lost += int(unique[-1] - unique[0] + 1 - len(unique))
    return {'rows': int(reader.count), 'lost': lost, 'duplicated': duplicated}
