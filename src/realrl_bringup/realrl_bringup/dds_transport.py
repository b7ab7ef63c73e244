"""Fast DDS transports for a graph's processes (no ROS imports).

A transition carries camera frames (~100 kB with two 128x128 RGB cameras): far more than
Fast DDS's default shared-memory segment (~0.5 MB) holds at 1,000 messages/s, so with the
default transports most samples waited for reliable repair over UDP. Fast DDS's
``LARGE_DATA`` builtin transports (shared memory with room for large samples, TCP on
loopback, UDP for discovery only) carried ~2x more end to end (bench/replay_ingest.py).
``realrl train`` gives them to every process it starts, and to its own monitor node.

A user's choice wins: set ``FASTDDS_BUILTIN_TRANSPORTS`` (e.g. ``DEFAULT``: Fast DDS's own)
before ``realrl train``. Every participant of a graph must use the same choice across hosts
(LARGE_DATA sends user data over TCP, the default over UDP; on one host shared memory
joins both).
"""
from __future__ import annotations

from typing import Mapping

BUILTIN_TRANSPORTS = 'FASTDDS_BUILTIN_TRANSPORTS'
"""Environment variable Fast DDS reads its builtin transports from."""
LARGE_DATA = 'LARGE_DATA'


def graph_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for a graph's processes: ``env`` with Fast DDS's LARGE_DATA builtin
    transports, unless ``env`` already chooses builtin transports."""
    out = dict(env)
    if not out.get(BUILTIN_TRANSPORTS):
        out[BUILTIN_TRANSPORTS] = LARGE_DATA
    return out
