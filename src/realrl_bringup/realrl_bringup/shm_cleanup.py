"""Removes Fast DDS shared-memory files that no living process uses any more.

A process killed with SIGKILL cannot release its Fast DDS segments, port queues and
their locks under /dev/shm, and a process that exits normally keeps its own mapped until
it is gone. A file is in use while some process maps it or holds it open. Only files this
launcher's processes were seen using, or that were created since it started, and that
nobody else uses are removed, so other ROS 2 programs on the machine are never touched.
"""
from __future__ import annotations

import os
from pathlib import Path

SHM = Path('/dev/shm')
PREFIXES = ('fastdds_', 'fastrtps_', 'sem.fastdds_', 'sem.fastrtps_')


def fastdds_files(shm: Path = SHM) -> list[Path]:
    """The Fast DDS shared-memory files under shm (none if shm does not exist)."""
    try:
        return [p for p in shm.iterdir() if p.name.startswith(PREFIXES)]
    except FileNotFoundError:
        return []


def files_of(pid: int, shm: Path = SHM) -> set[str]:
    """Paths under shm that process pid maps or holds open."""
    used: set[str] = set()
    prefix = str(shm) + '/'
    try:
        with open(f'/proc/{pid}/maps') as f:
            for line in f:
                i = line.find(prefix)
                if i >= 0:
                    used.add(line[i:].strip().removesuffix(' (deleted)'))
        for fd in os.listdir(f'/proc/{pid}/fd'):
            try:
                target = os.readlink(f'/proc/{pid}/fd/{fd}')
            except OSError:
                continue
            if target.startswith(prefix):
                used.add(target)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return used


def files_in_use(shm: Path = SHM, ignore_pids: frozenset = frozenset()) -> set[str]:
    """Paths under shm that any process but those in ignore_pids uses."""
    used: set[str] = set()
    for pid in filter(str.isdigit, os.listdir('/proc')):
        if int(pid) not in ignore_pids:
            used |= files_of(int(pid), shm)
    return used


def remove_orphan_segments(since: float = 0.0, shm: Path = SHM, seen: set[str] = frozenset(),
                           ignore_pids: frozenset = frozenset()) -> list[str]:
    """Delete Fast DDS files that were ``seen`` in use by our processes or changed at or
    after ``since``, and that no process (but those in ``ignore_pids``, e.g. ourselves
    about to exit) uses now; returns their names."""
    used = files_in_use(shm, ignore_pids)
    removed = []
    for path in fastdds_files(shm):
        try:
            ours = str(path) in seen or path.stat().st_mtime >= since - 1.0
            if not ours or str(path) in used:
                continue
            path.unlink()
            removed.append(path.name)
        except FileNotFoundError:
            continue
    return removed
