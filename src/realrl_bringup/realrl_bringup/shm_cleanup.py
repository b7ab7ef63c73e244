"""Removes Fast DDS shared-memory files that no living process uses any more.

A process killed with SIGKILL cannot release its Fast DDS segments, port queues and
their locks under /dev/shm. A file is in use while some process maps it or holds it
open; only files created since ``since`` (this launcher's start) and used by nobody
are removed, so other ROS 2 programs on the machine are never touched.
"""
from __future__ import annotations

import os
from pathlib import Path

SHM = Path('/dev/shm')
PREFIXES = ('fastdds_', 'fastrtps_', 'sem.fastdds_', 'sem.fastrtps_')


def fastdds_files(shm: Path = SHM) -> list[Path]:
    try:
        return [p for p in shm.iterdir() if p.name.startswith(PREFIXES)]
    except FileNotFoundError:
        return []


def files_in_use(shm: Path = SHM) -> set[str]:
    used: set[str] = set()
    shm_prefix = str(shm) + '/'
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/maps') as f:
                for line in f:
                    i = line.find(shm_prefix)
                    if i >= 0:
                        used.add(line[i:].strip().removesuffix(' (deleted)'))
            for fd in os.listdir(f'/proc/{pid}/fd'):
                try:
                    target = os.readlink(f'/proc/{pid}/fd/{fd}')
                except OSError:
                    continue
                if target.startswith(shm_prefix):
                    used.add(target)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return used


def remove_orphan_segments(since: float = 0.0, shm: Path = SHM) -> list[str]:
    """Delete unused Fast DDS files changed at or after ``since``; returns their names."""
    used = files_in_use(shm)
    removed = []
    for path in fastdds_files(shm):
        try:
            if path.stat().st_mtime < since - 1.0 or str(path) in used:
                continue
            path.unlink()
            removed.append(path.name)
        except FileNotFoundError:
            continue
    return removed
