"""Shared helpers of the replay store tests (small stores, fast)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from realrl_replay import ReplayWriter, StoreConfig, WriterConfig
from realrl_replay.synthetic import TransitionFactory, example_schema

SMALL = StoreConfig(target_chunk_bytes=16 << 10, min_chunk_rows=4, max_chunk_rows=64,
                    large_row_bytes=512, max_shard_chunks=3)
"""Tiny chunks and shards so that a few hundred rows cross many chunk and shard boundaries."""


def small_schema(next_images: bool = False) -> dict:
    return example_schema(image_hw=(16, 16), state_dim=4, action_dim=2, next_images=next_images)


def make_writer(path: Path, fsync: bool = False, store_config: StoreConfig = SMALL,
                schema: dict | None = None, **kw) -> ReplayWriter:
    return ReplayWriter.create(path, schema or small_schema(), {'task': 'test'}, store_config,
                               WriterConfig(fsync=fsync, **kw))


def factory(next_images: bool = False, **kw) -> TransitionFactory:
    return TransitionFactory(small_schema(next_images), noise=1.0, bank_size=8, **kw)


def tree_digest(root: Path) -> str:
    """Hash of every name, size, mtime and content under root (to prove nothing was written)."""
    h = hashlib.sha256()
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files + dirs):
            p = Path(dirpath) / name
            st = p.lstat()
            h.update(f'{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}'.encode())
            if p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()


def seqs_of(rows: dict, names, robot: str) -> np.ndarray:
    return rows['seq'][rows['robot_id'] == names.index(robot)]
