"""The baseline of bench/replay_ingest.py's end-to-end part: the replay node over memory.

The real ``ReplayNode`` (subscriptions, message conversion, seq checks, commit timer, acks)
with its ``ReplayWriter`` replaced by ``MemoryWriter``: a preallocated, warm numpy ring
buffer per field that copies every row the store would write (every field of the schema,
next_obs images included, the robot code and the seq), uncompressed, and counts a row
durable at the next commit tick (no encoding, no disk).

    python bench/_memory_replay_node.py --ros-args --params-file PARAMS.yaml
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import Future
from types import MappingProxyType

import numpy as np

from realrl_common.node_main import spin_node
from realrl_replay import replay_node
from realrl_replay.config import StoreConfig
from realrl_replay.ingest_core import IngestCore
from realrl_replay.replay_node import ReplayNode
from realrl_replay.schema import Schema
from realrl_replay.transition_schema import store_schema
from realrl_replay.writer import CommitInfo

CAPACITY = 4096


class MemoryWriter:
    """What ReplayNode asks of its writer, over a numpy ring buffer of CAPACITY rows."""

    def __init__(self, schema: dict, metadata: dict):
        self.schema = Schema.build(schema, StoreConfig())
        self.metadata = metadata
        self.columns = {f.name: np.ones((CAPACITY, *f.shape), f.dtype)
                        for f in self.schema.fields if f.name != 'robot_id'}
        self.codes = np.zeros(CAPACITY, np.uint16)
        self._robots: dict[str, int] = {}
        self._staged: dict[str, int] = {}
        self._durable: dict[str, int] = {}
        self.count, self.pending, self._written, self._commits = 0, 0, 0, 0

    def append(self, records) -> list[bool]:
        for rec in records:
            at = self._written % CAPACITY
            for name, column in self.columns.items():
                if name in rec:
                    column[at] = rec[name]  # a copy of every value the store would write
            self.codes[at] = self._robots.setdefault(rec['robot_id'], len(self._robots))
            self._staged[rec['robot_id']] = int(rec['seq'])
            self._written += 1
            self.pending += 1
        return [True] * len(records)

    @property
    def rows_to_boundary(self) -> int:
        return 1  # no chunks: every tick may commit what is pending

    @property
    def committing(self) -> bool:
        return False

    def commit_async(self, boundary: bool = False) -> Future:
        self._durable.update(self._staged)
        self.count += self.pending
        self.pending = 0
        self._commits += 1
        done = Future()
        done.set_result(self.commit_info())
        return done

    def commit(self) -> CommitInfo:
        return self.commit_async().result()

    def commit_info(self) -> CommitInfo:
        return CommitInfo(self.count, 0, MappingProxyType(dict(self._durable)), self._commits)

    def committed_seq(self, robot: str) -> int:
        return self._durable.get(robot, -1)

    def committed_episode(self, robot: str) -> int:
        return -1  # a fresh buffer: no episode of any robot is durable from an earlier run

    @property
    def robot_names(self) -> tuple[str, ...]:
        return tuple(self._robots)

    def close(self) -> None:
        self.commit()


class MemoryIngestCore(IngestCore):
    """The replay node's protocol core with a MemoryWriter for its store (created once the
    descriptions are in, as the real one creates its store)."""

    def _create(self) -> None:
        descriptions = {rid: self.descriptions[rid] for rid in self.robot_ids}
        fields, self.space = store_schema(descriptions, self.schema)
        self.writer = MemoryWriter(fields, {'created_unix': time.time(), **self.metadata,
                                            'robots': descriptions})
        self.embodiment = {rid: self.space.index(d) for rid, d in descriptions.items()}
        self._prepare()
        # _ingest_e2e waits for this line in the node's log before it starts the clock.
        print(f'in-memory baseline for {sorted(descriptions)}', file=sys.stderr, flush=True)


def main(args=None):
    # The node is the real ReplayNode; only the core it builds is the in-memory one.
    replay_node.IngestCore = MemoryIngestCore
    spin_node(ReplayNode, 'replay', args)


if __name__ == '__main__':
    main()
