"""The single writer: append transitions, commit them durably, recover after a crash.

Commit protocol (the commit marker doubles as the write-ahead segment of incomplete chunks):

1. every chunk that the pending rows complete is encoded and written once, in place, and
   fdatasync-ed; the folders that got new files are fsync-ed;
2. the commit marker (count, robot names, committed seq per robot, and the rows of every
   field's incomplete last chunk) is written to ``commit.bin.partial``, fdatasync-ed and renamed
   over ``commit.bin``, last. commit() returns only then: the transitions are durable and may
   be acknowledged.

A crash before the rename leaves the previous marker, and every row it counts intact; ``open``
deletes the rest (see recovery.py). Readers follow the marker, so they see whole commits.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from .config import StoreConfig, WriterConfig
from .errors import StoreError
from .layout import ChunkCodec, CommitMarker, chunk_name, field_dir, fsync_dir, write_chunk
from .lock import WriterLock
from .recovery import repair, scan
from .schema import MAX_ROBOTS, ROBOT_ID, SEQ, FieldSpec, Schema
from .store import StoreInfo, create_store


@dataclass(frozen=True)
class CommitInfo:
    """What is durable after a commit: acknowledge every seq <= ``seqs[robot]``."""

    count: int
    """Committed rows in the store."""
    new_rows: int
    """Rows this commit added."""
    seqs: Mapping[str, int]
    """Highest committed seq per robot name."""
    commit_id: int
    """Number of commits the store has had."""


class _Column:
    """One field's rows from the start of its last incomplete chunk to the last pending row."""

    def __init__(self, spec: FieldSpec, start: int, tail: np.ndarray):
        self.spec = spec
        self.codec = ChunkCodec(spec)
        self.folder: Path | None = None
        self.start = start
        self.rows = np.zeros((max(4 * spec.chunk_rows, len(tail)), *spec.shape), spec.dtype)
        self.rows[:len(tail)] = tail
        self.used = len(tail)

    def reserve(self, n: int) -> None:
        if self.used + n > len(self.rows):
            grown = np.zeros((max(2 * len(self.rows), self.used + n), *self.spec.shape),
                             self.spec.dtype)
            grown[:self.used] = self.rows[:self.used]
            self.rows = grown

    def chunk_jobs(self, end: int) -> list[tuple[int, np.ndarray]]:
        """(chunk index, rows) of every chunk completed by the rows below ``end``."""
        c = self.spec.chunk_rows
        return [(k, self.rows[k * c - self.start:(k + 1) * c - self.start])
                for k in range(self.start // c, end // c)]

    def tail(self, end: int) -> np.ndarray:
        """Rows of the incomplete chunk that holds row ``end`` - 1 (or none)."""
        lo = end // self.spec.chunk_rows * self.spec.chunk_rows
        return self.rows[lo - self.start:end - self.start]

    def advance(self, count: int) -> None:
        """Forget rows of chunks completed below ``count``."""
        c = self.spec.chunk_rows
        new_start = count // c * c
        shift = new_start - self.start
        if shift:
            keep = self.used - shift
            self.rows[:keep] = self.rows[shift:self.used]
            self.rows[keep:self.used] = 0
            self.used, self.start = keep, new_start


class ReplayWriter:
    """The store's single writer. Not thread-safe: call it from one thread."""

    def __init__(self, info: StoreInfo, marker: CommitMarker, lock: WriterLock,
                 config: WriterConfig):
        self.info = info
        self.config = config
        self._lock = lock
        self._commit_id = marker.commit_id
        self._count = marker.count
        self._robots = list(marker.robots)
        self._codes = {name: i for i, name in enumerate(self._robots)}
        self._seqs = list(marker.seqs)
        self._pending = 0
        self._pending_seqs: dict[int, int] = {}
        self._columns = {}
        for spec in info.schema.fields:
            column = _Column(spec, marker.count // spec.chunk_rows * spec.chunk_rows,
                             marker.tails[spec.name])
            column.folder = field_dir(info.root, spec)
            self._columns[spec.name] = column
        self._pool = ThreadPoolExecutor(config.io_threads, thread_name_prefix='replay-io')
        self._closed = False

    # ----------------------------------------------------------------------------- opening
    @classmethod
    def create(cls, path: str | os.PathLike, schema: Mapping[str, Any],
               metadata: Mapping | None = None, store_config: StoreConfig | None = None,
               config: WriterConfig | None = None) -> ReplayWriter:
        """Create an empty store at ``path`` (absent or an empty folder) and open it."""
        config = config or WriterConfig()
        create_store(path, schema, metadata or {}, store_config or StoreConfig(), config.fsync)
        return cls.open(path, config)

    @classmethod
    def open(cls, path: str | os.PathLike, config: WriterConfig | None = None) -> ReplayWriter:
        """Open an existing store for writing, recovering it after a crash.

        Raises StoreError, without writing anything, if ``path`` is not a valid store, and
        StoreLockedError if another writer holds it.
        """
        config = config or WriterConfig()
        info = StoreInfo.load(path)
        marker = CommitMarker.read(info.root, info.identity.uuid, info.schema)
        scan(info, marker.count)  # read-only check before the lock file is touched
        lock = WriterLock.acquire(info.root)
        try:
            marker = CommitMarker.read(info.root, info.identity.uuid, info.schema)
            if repair(info, marker.count, scan(info, marker.count)) and config.fsync:
                for spec in info.schema.fields:
                    fsync_dir(field_dir(info.root, spec))
                fsync_dir(info.root)
            return cls(info, marker, lock, config)
        except BaseException:
            lock.release()
            raise

    # ---------------------------------------------------------------------------- queries
    @property
    def schema(self) -> Schema:
        return self.info.schema

    @property
    def metadata(self) -> dict:
        return self.info.metadata

    @property
    def count(self) -> int:
        """Committed rows."""
        return self._count

    @property
    def pending(self) -> int:
        """Rows appended and not yet committed."""
        return self._pending

    @property
    def robot_names(self) -> tuple[str, ...]:
        """Name of each robot_id code, committed or pending."""
        return tuple(self._robots)

    def committed_seq(self, robot: str) -> int:
        """Highest committed seq of ``robot``; -1 if none. Everything <= it may be acked."""
        code = self._codes.get(robot)
        return self._seqs[code] if code is not None and code < len(self._seqs) else -1

    def commit_info(self) -> CommitInfo:
        return CommitInfo(self._count, 0, self._seq_map(), self._commit_id)

    @property
    def rows_to_boundary(self) -> int:
        """Rows to append before the smallest chunk is complete. Under load, committing when
        ``pending >= rows_to_boundary`` keeps commit markers small (no image rows in tails)."""
        b = self.schema.block_rows
        return b - (self._count + self._pending) % b

    # ---------------------------------------------------------------------------- writing
    def append(self, records: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[bool]:
        """Stage transitions; return per transition whether it was new (False: a re-send).

        ``records`` is a list of dicts or a dict of stacked columns, each with every schema
        field plus ``robot_id`` (str) and ``seq`` (int >= 0). A transition whose seq is not
        above its robot's highest seq seen so far is dropped; it is acknowledged like any
        other once its robot's committed seq reaches it. Nothing is durable before commit().
        """
        self._check_open()
        columns, n = self._columns_of(records)
        if n == 0:
            return []
        accepted = np.zeros(n, bool)
        codes = np.zeros(n, self.schema.by_name[ROBOT_ID].dtype)
        robots, pending_seqs = list(self._robots), dict(self._pending_seqs)
        index = dict(self._codes)
        for i, (robot, seq) in enumerate(zip(columns[ROBOT_ID], columns[SEQ].tolist())):
            code = self._code_of(robot, robots, index)
            if seq < 0:
                raise ValueError(f'seq must be >= 0, got {seq} (record {i}, robot {robot!r})')
            last = pending_seqs.get(code)
            if last is None:
                last = self._seqs[code] if code < len(self._seqs) else -1
            if seq > last:
                accepted[i] = True
                codes[i] = code
                pending_seqs[code] = seq
        self._robots, self._codes, self._pending_seqs = robots, index, pending_seqs
        k = int(accepted.sum())
        if k:
            columns[ROBOT_ID] = codes
            whole = k == n
            for name, column in self._columns.items():
                values = columns[name] if whole else columns[name][accepted]
                column.reserve(k)
                column.rows[column.used:column.used + k] = values
                column.used += k
            self._pending += k
        return accepted.tolist()

    def commit(self) -> CommitInfo:
        """Make every appended transition durable; return what may now be acknowledged."""
        self._check_open()
        if not self._pending:
            return self.commit_info()
        end = self._count + self._pending
        if end > self.info.config.capacity_rows:
            raise StoreError(f'{self.info.root}: store is full ({self.info.config.capacity_rows} '
                             'rows, StoreConfig.capacity_rows)')
        fsync = self.config.fsync
        jobs = [(column, k, chunk) for column in self._columns.values()
                for k, chunk in column.chunk_jobs(end)]
        for future in [self._pool.submit(_write_chunk, column, k, chunk, fsync)
                       for column, k, chunk in jobs]:
            future.result()
        if fsync and jobs:
            folders = {column.folder for column, _, _ in jobs}
            for future in [self._pool.submit(fsync_dir, folder) for folder in folders]:
                future.result()
        seqs = list(self._seqs) + [-1] * (len(self._robots) - len(self._seqs))
        for code, seq in self._pending_seqs.items():
            seqs[code] = seq
        tails = {name: column.tail(end) for name, column in self._columns.items()}
        marker = CommitMarker(self.info.identity.uuid, self._commit_id + 1, end,
                              tuple(self._robots), tuple(seqs), tails)
        marker.write(self.info.root, self.schema, fsync)
        new_rows = self._pending
        self._commit_id, self._count, self._seqs = marker.commit_id, end, seqs
        self._pending, self._pending_seqs = 0, {}
        for column in self._columns.values():
            column.advance(end)
        return CommitInfo(end, new_rows, self._seq_map(), marker.commit_id)

    def close(self, commit: bool = True) -> None:
        """Commit pending rows (unless ``commit`` is False), release the lock."""
        if self._closed:
            return
        try:
            if commit and self._pending:
                self.commit()
        finally:
            self._closed = True
            self._pool.shutdown()
            self._lock.release()

    def __enter__(self) -> ReplayWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(commit=exc_type is None)

    # ---------------------------------------------------------------------------- helpers
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f'{self.info.root}: writer is closed')

    def _seq_map(self) -> Mapping[str, int]:
        return MappingProxyType(dict(zip(self._robots, self._seqs)))

    def _code_of(self, robot: Any, robots: list[str], index: dict[str, int]) -> int:
        if not isinstance(robot, str) or not robot:
            raise ValueError(f'robot_id must be a non-empty str, got {robot!r}')
        code = index.get(robot)
        if code is None:
            if len(robots) >= MAX_ROBOTS:
                raise StoreError(f'{self.info.root}: more than {MAX_ROBOTS} robots')
            code = index[robot] = len(robots)
            robots.append(robot)
        return code

    def _columns_of(self, records) -> tuple[dict[str, Any], int]:
        if isinstance(records, Mapping):
            source = records
            missing = [f.name for f in self.schema.fields if f.name not in source]
            extra = sorted(set(source) - set(self.schema.by_name))
            n = len(source[ROBOT_ID]) if ROBOT_ID in source else 0
            get = source.__getitem__
        else:
            records = list(records)
            n = len(records)
            keys = set(records[0]) if records else set()
            for i, r in enumerate(records):
                if set(r) != keys:
                    diff = sorted(set(r) ^ keys)
                    raise ValueError(f'record {i} has different fields than record 0: {diff}')
            missing = [f.name for f in self.schema.fields if n and f.name not in keys]
            extra = sorted(keys - set(self.schema.by_name))
            get = lambda name: [r[name] for r in records]  # noqa: E731
        if missing or extra:
            raise ValueError(f'records must have exactly the schema fields: missing {missing}, '
                             f'unknown {extra}')
        columns: dict[str, Any] = {}
        for spec in self.schema.fields:
            values = get(spec.name)
            if spec.name == ROBOT_ID:
                columns[ROBOT_ID] = list(values)
                continue
            array = np.asarray(values)
            if array.shape != (n, *spec.shape):
                raise ValueError(f'field {spec.name!r} expects rows of shape {spec.shape}, got '
                                 f'{array.shape[1:]} for {array.shape[0]} rows')
            if array.dtype != spec.dtype:
                if not np.can_cast(array.dtype, spec.dtype, 'same_kind'):
                    raise ValueError(f'field {spec.name!r} expects {spec.dtype}, got '
                                     f'{array.dtype} (cast it explicitly)')
                array = array.astype(spec.dtype)
            columns[spec.name] = array
        if len(columns[ROBOT_ID]) != n:
            raise ValueError(f"column 'robot_id' has {len(columns[ROBOT_ID])} rows, expected {n}")
        return columns, n


def _write_chunk(column: _Column, k: int, chunk: np.ndarray, fsync: bool) -> None:
    write_chunk(column.folder / chunk_name(column.spec, k), column.codec.encode(chunk), fsync)
