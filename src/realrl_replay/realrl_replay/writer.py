"""The single writer: append transitions, commit them durably, recover after a crash.

Commit protocol (the commit marker doubles as the write-ahead segment of incomplete chunks):

1. every chunk that the committed rows complete is encoded and appended once to its field's
   shard file (shards.py: O_DIRECT where the file system allows it), the shard's index is
   updated and the file fdatasync-ed (a new shard file also gets its folder fsync-ed);
2. the commit marker (count, robot names, committed seq per robot, the rows of every field's
   incomplete last chunk, the retention watermark) is written in place into slot
   ``commit_id % 2`` and fdatasync-ed, last. The commit is durable then, and only then may
   its transitions be acknowledged;
3. shard files wholly below a moved retention watermark are deleted.

``commit_async`` runs 1-3 on a commit thread (encoding and writing on ``io_threads``: chunks
are encoded in parallel, each field's shard is written by one thread) and returns at once,
so the caller appends the next transitions while the previous ones are written; commits
are made durable in the order they were started. A crash before step 2 ended leaves the
previous marker in the other slot and every row it counts intact; ``open`` deletes the rest
(see recovery.py). Readers follow the marker, so they see whole commits.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from realrl_common.transition import EPISODE_ID

from .config import RetentionConfig, StoreConfig, WriterConfig
from .errors import StoreError
from .layout import ChunkCodec, CommitMarker, MarkerSlots, chunk_name, field_dir, fsync_dir
from .lock import WriterLock
from .plain_view import PlainView
from .recovery import repair, scan
from .schema import LINK, MAX_ROBOTS, ROBOT_ID, SEQ, FieldSpec, Schema
from .shards import ShardWriter, aligned, read_entry
from .store import StoreInfo, create_store

EPISODE = EPISODE_ID


@dataclass(frozen=True)
class CommitInfo:
    """What is durable after a commit: acknowledge every seq <= ``seqs[robot]``."""

    count: int
    """Committed rows in the store (row indices 0..count-1, of which ``first``.. are kept)."""
    new_rows: int
    """Rows this commit added."""
    seqs: Mapping[str, int]
    """Highest committed seq per robot name."""
    commit_id: int
    """Number of commits the store has had."""
    first: int = 0
    """Retention watermark: rows below it were evicted."""
    episodes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Highest committed episode_id per robot name (robots with rows of one)."""


class _Column:
    """One field's rows from the start of its last incomplete chunk to the last appended row.

    The buffer is never shifted in place: a commit in flight may still encode views of it.
    ``advance`` moves the kept rows into a spare buffer; buffers come back to ``spare`` when
    the commit that used them is done.
    """

    def __init__(self, spec: FieldSpec, start: int, tail: np.ndarray, folder: Path):
        self.spec = spec
        self.codec = ChunkCodec(spec)
        self.folder = folder
        self.start = start
        self.rows = np.zeros((max(4 * spec.chunk_rows, len(tail)), *spec.shape), spec.dtype)
        self.rows[:len(tail)] = tail
        self.used = len(tail)
        self.spare: list[np.ndarray] = []
        self.shard: ShardWriter | None = None
        """The shard file that the next chunk goes to, while open (the commit thread's)."""
        self.shard_index = -1
        self.bytes_per_row = float(spec.row_bytes)
        """Estimate of the encoded bytes per row (for RetentionConfig.max_bytes)."""

    def open_shard(self, j: int, fsync: bool) -> bool:
        """Make shard ``j`` the one chunks are appended to (the previous one flushed and
        closed first); returns whether its file was created now."""
        if self.shard_index == j:
            return False
        if self.shard is not None:
            self.shard.flush(fsync)
            self.shard.close()
        self.shard = ShardWriter(self.folder / chunk_name(self.spec, j), self.spec.shard_chunks)
        self.shard_index = j
        return self.shard.created

    def reserve(self, n: int) -> None:
        if self.used + n > len(self.rows):
            grown = np.empty((max(2 * len(self.rows), self.used + n), *self.spec.shape),
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

    def advance(self, end: int) -> np.ndarray | None:
        """Forget rows of chunks completed below ``end``; return the buffer given up (still
        referenced by the commit's chunk views) or None."""
        c = self.spec.chunk_rows
        new_start = end // c * c
        shift = new_start - self.start
        if not shift:
            return None
        keep = self.used - shift
        # Never shrink: a fresh buffer as large as the current one can take the same burst
        # without growing, and spares of one size are reused (new pages cost a page fault per
        # 4 KiB on first touch, which made copying rows in the main cost of an append).
        size = max(4 * c, keep + c, len(self.rows))
        fresh = None
        while self.spare:
            candidate = self.spare.pop()
            if len(candidate) >= size:
                fresh = candidate
                break
        if fresh is None:
            fresh = np.empty((size, *self.spec.shape), self.spec.dtype)
        fresh[:keep] = self.rows[shift:self.used]
        old, self.rows = self.rows, fresh
        self.used, self.start = keep, new_start
        return old


@dataclass
class _Snapshot:
    """Everything one commit writes, taken on the caller's thread."""

    marker: CommitMarker
    jobs: list
    new_rows: int
    released: list


class ReplayWriter:
    """The store's single writer. Call it from one thread (commits run on their own)."""

    def __init__(self, info: StoreInfo, marker: CommitMarker, lock: WriterLock,
                 config: WriterConfig):
        self.info = info
        self.config = config
        self._lock = lock
        self._retention = config.retention
        if self._retention is not None:
            _check_retention(info, self._retention)
        self._reader = None
        if marker.episodes is None:  # a marker from before markers carried episodes
            marker = replace(marker, episodes=self._scan_episodes(marker))
        # durable state (replaced as a whole by the commit thread)
        self._durable = _commit_info(marker, 0)
        # staged state (what the commits started so far will have made durable)
        self._last = marker
        self._kept = (marker.first, marker.min_episode)  # retention state, commit thread's
        self._robots = list(marker.robots)
        self._codes = {name: i for i, name in enumerate(self._robots)}
        self._top_seq = list(marker.seqs)   # highest accepted seq per code, pending included
        self._pending = 0
        schema = info.schema
        self._columns: dict[str, _Column] = {}
        for spec in schema.fields:
            self._columns[spec.name] = _Column(
                spec, marker.count // spec.chunk_rows * spec.chunk_rows,
                marker.tails[spec.name], field_dir(info.root, spec))
        large = [f.chunk_rows for f in schema.fields if f.row_bytes >= info.config.large_row_bytes]
        self.boundary_rows = max(large) if large else schema.block_rows
        """Rows between commit points that leave no large (image) rows in the marker."""
        self._link_bits = [(self._columns[f.name], self._columns[f.link], np.uint8(1 << i))
                           for i, f in enumerate(schema.links)]
        self._last_row: dict[int, int] = {}   # robot code -> its newest row (for links)
        self._slots = MarkerSlots(info.root)
        self._pool = ThreadPoolExecutor(config.io_threads, thread_name_prefix='replay-io')
        self._committer = ThreadPoolExecutor(1, thread_name_prefix='replay-commit')
        self._inflight: Future | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._open_shards(config.fsync)
        self._plain = PlainView(info.root, schema, config.plain_view_interval_s)
        self._plain_marker = marker
        """The newest durable marker (what close shows plain Zarr readers)."""
        self._plain.update(marker, self._columns, self._pool, config.fsync)

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

        Raises StoreError, without writing anything, if ``path`` is not a valid store (or one
        of formats 1 and 2, which are read-only), and StoreLockedError if another writer holds
        it.
        """
        config = config or WriterConfig()
        info = StoreInfo.load(path)
        marker = info.read_marker()
        if info.version != 3:
            raise StoreError(f'{info.root}: store format version {info.version} is read-only '
                             'here (ReplayReader and Sampler read it; write a new store)')
        scan(info, marker.count, marker.first)  # read-only check before the lock is touched
        lock = WriterLock.acquire(info.root)
        try:
            marker = info.read_marker()
            PlainView(info.root, info.schema, 0).shrink(marker.count, config.fsync)
            scans = scan(info, marker.count, marker.first)
            deleted = repair(info, marker.count, scans, marker.first)
            if config.fsync and deleted:
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
        """Committed (durable) rows."""
        return self._durable.count

    @property
    def first(self) -> int:
        """First row not evicted by retention."""
        return self._durable.first

    @property
    def pending(self) -> int:
        """Rows appended and not yet handed to a commit."""
        return self._pending

    @property
    def robot_names(self) -> tuple[str, ...]:
        """Name of each robot_id code, committed or pending."""
        return tuple(self._robots)

    @property
    def committing(self) -> bool:
        """Whether a commit started by commit_async is still running."""
        return self._inflight is not None and not self._inflight.done()

    def committed_seq(self, robot: str) -> int:
        """Highest committed seq of ``robot``; -1 if none. Everything <= it may be acked."""
        return self._durable.seqs.get(robot, -1)

    def committed_episode(self, robot: str) -> int:
        """Highest committed episode_id of ``robot``; -1 if none (from the marker)."""
        return self._durable.episodes.get(robot, -1)

    def commit_info(self) -> CommitInfo:
        return replace(self._durable, new_rows=0)

    @property
    def rows_to_boundary(self) -> int:
        """Rows to append before the next commit point that leaves no image rows in the
        marker (see commit_async(boundary=True))."""
        b = self.boundary_rows
        return b - (self._last.count + self._pending) % b

    # ---------------------------------------------------------------------------- writing
    def append(self, records: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[bool]:
        """Stage transitions; return per transition whether it was new (False: a re-send).

        ``records`` is a list of dicts or a dict of stacked columns, each with every schema
        field plus ``robot_id`` (str) and ``seq`` (int >= 0). A transition whose seq is not
        above its robot's highest seq seen so far is dropped; it is acknowledged like any
        other once its robot's committed seq reaches it. Nothing is durable before a commit.
        """
        self._check_open()
        source, n, robot_ids, seqs = self._source_of(records)
        if n == 0:
            return []
        accepted = np.zeros(n, bool)
        codes = np.zeros(n, self.schema.by_name[ROBOT_ID].dtype)
        robots, index, top = list(self._robots), dict(self._codes), list(self._top_seq)
        for i, (robot, seq) in enumerate(zip(robot_ids, seqs.tolist())):
            code = self._code_of(robot, robots, index)
            if seq < 0:
                raise ValueError(f'seq must be >= 0, got {seq} (record {i}, robot {robot!r})')
            if code >= len(top):
                top.append(-1)
            if seq > top[code]:
                accepted[i] = True
                codes[i] = code
                top[code] = seq
        k = int(accepted.sum())
        if k:
            self._fill(source, accepted, k == n, k, codes[accepted], seqs[accepted])
        self._robots, self._codes, self._top_seq = robots, index, top
        if k:
            self._link(k, codes[accepted])
            self._pending += k
        return accepted.tolist()

    def commit(self) -> CommitInfo:
        """Make every appended transition durable; return what may now be acknowledged."""
        return self.commit_async().result()

    def commit_async(self, boundary: bool = False) -> Future:
        """Start making the appended transitions durable; the Future gives the CommitInfo.

        Returns at once; append may go on meanwhile (those rows go to a later commit). With
        ``boundary`` (under load), only the rows up to the last multiple of
        ``boundary_rows`` are taken if there is one past the last commit, so that the
        marker carries no image rows; the rest stays pending for the next commit.
        """
        self._check_open()
        start = self._last.count
        end = start + self._pending
        if boundary:
            cut = end // self.boundary_rows * self.boundary_rows
            if cut > start:
                end = cut
        if end == start:
            if self._inflight is not None:
                return self._inflight
            done: Future = Future()
            done.set_result(self.commit_info())
            return done
        if end > self.info.config.capacity_rows:
            raise StoreError(f'{self.info.root}: store is full ({self.info.config.capacity_rows} '
                             'rows, StoreConfig.capacity_rows)')
        snap = self._snapshot(start, end)
        future = self._committer.submit(self._run_commit, snap)
        self._inflight = future
        return future

    def wait(self) -> CommitInfo:
        """Wait for every started commit; return the durable state."""
        if self._inflight is not None:
            self._inflight.result()
        return self.commit_info()

    def close(self, commit: bool = True) -> None:
        """Commit pending rows (unless ``commit`` is False), release the lock."""
        if self._closed:
            return
        try:
            if commit and self._pending and self._error is None:
                self.commit()
            elif self._inflight is not None and self._error is None:
                self._inflight.result()
            if self._error is None:
                self._plain.update(self._plain_marker, self._columns, self._pool,
                                   self.config.fsync, final=True)
        finally:
            self._closed = True
            self._committer.shutdown()
            self._pool.shutdown()
            for column in self._columns.values():
                if column.shard is not None:
                    column.shard.close()
            self._slots.close()
            self._lock.release()

    def __enter__(self) -> ReplayWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(commit=exc_type is None)

    # ----------------------------------------------------------------------- the commit
    def _snapshot(self, start: int, end: int) -> _Snapshot:
        """On the caller's thread: what commit ``start..end`` writes; advances the columns."""
        seq_col, code_col = self._columns[SEQ], self._columns[ROBOT_ID]
        codes = code_col.rows[start - code_col.start:end - code_col.start]
        new_seqs = seq_col.rows[start - seq_col.start:end - seq_col.start]
        seqs = list(self._last.seqs) + [-1] * (len(self._robots) - len(self._last.seqs))
        episodes = list(self._last.episodes) + [-1] * (len(self._robots)
                                                       - len(self._last.episodes))
        ep_col = self._columns.get(EPISODE)
        new_eps = (ep_col.rows[start - ep_col.start:end - ep_col.start] if ep_col is not None
                   else None)
        for code in np.unique(codes).tolist():
            mine = codes == code
            seqs[code] = int(new_seqs[mine].max())
            if new_eps is not None:
                episodes[code] = max(episodes[code], int(new_eps[mine].max()))
        link_col = self._columns.get(LINK)
        jobs, tails, released = [], {}, []
        for name, column in self._columns.items():
            for k, rows in column.chunk_jobs(end):
                zero = None
                if column.spec.link:
                    bit = next(b for c, _, b in self._link_bits if c is column)
                    lo = k * column.spec.chunk_rows - link_col.start
                    flags = link_col.rows[lo:lo + column.spec.chunk_rows]
                    zero = np.flatnonzero(flags & bit)
                jobs.append((column, k, rows, zero))
            tails[name] = column.tail(end).copy()
        for column in self._columns.values():
            old = column.advance(end)
            if old is not None:
                released.append((column, old))
        self._pending -= end - start
        marker = CommitMarker(self.info.identity.uuid, self._last.commit_id + 1, end,
                              tuple(self._robots), tuple(seqs), tails,
                              episodes=tuple(episodes))
        self._last = marker
        return _Snapshot(marker, jobs, end - start, released)

    def _run_commit(self, snap: _Snapshot) -> CommitInfo:
        """On the commit thread: steps 1-3 of the protocol, in order."""
        if self._error is not None:
            raise StoreError(f'{self.info.root}: an earlier commit failed ({self._error}); '
                             'reopen the store to recover') from self._error
        try:
            fsync = self.config.fsync
            encoded: dict[_Column, list] = {}
            for column, k, rows, zero in snap.jobs:  # every chunk encoded in parallel
                encoded.setdefault(column, []).append(
                    (k, self._pool.submit(_encode_chunk, column, rows, zero)))
            writes = []
            for column, chunks in encoded.items():  # each shard written in order by one thread
                chunks = [(k, future.result()) for k, future in chunks]
                writes.append(self._pool.submit(_write_chunks, column, chunks, fsync))
            for future in writes:
                future.result()
            first, min_episode = self._kept
            marker = replace(snap.marker, first=first, min_episode=min_episode)
            evict = self._plan_retention(marker) if self._retention else None
            if evict is not None:
                marker = replace(marker, first=evict[0], min_episode=evict[1])
            self._slots.write(marker, self.schema, fsync)
            self._kept = (marker.first, marker.min_episode)
            previous = self._durable
            info = _commit_info(marker, snap.new_rows)
            self._durable = info
            self._plain_marker = marker
            if self._plain.due():
                self._plain.update(marker, self._columns, self._pool, fsync)
            if marker.first > previous.first:
                self._delete_below(previous.first, marker.first)
            for column, buffer in snap.released:
                column.spare.append(buffer)
            return info
        except BaseException as e:
            self._error = e
            raise

    # --------------------------------------------------------------------------- helpers
    def _fill(self, source, accepted, whole: bool, k: int, codes, seqs) -> None:
        """Validate every field of the accepted rows, then write them after ``used``."""
        staged = {}
        for spec in self.schema.fields:
            column = self._columns[spec.name]
            if spec.name in (ROBOT_ID, SEQ, LINK):
                continue
            values = source(spec.name)
            column.reserve(k)
            out = column.rows[column.used:column.used + k]
            if isinstance(values, np.ndarray):
                array = values if whole else values[accepted]
                _check_array(spec, array, k)
                np.copyto(out, array, casting='same_kind')
            else:
                if not whole:
                    values = [v for v, ok in zip(values, accepted) if ok]
                _stack_into(spec, values, out)
            staged[spec.name] = k
        for name, values in ((ROBOT_ID, codes), (SEQ, seqs)):
            column = self._columns[name]
            column.reserve(k)
            column.rows[column.used:column.used + k] = values
        if LINK in self._columns:
            column = self._columns[LINK]
            column.reserve(k)
            column.rows[column.used:column.used + k] = 0
        for column in self._columns.values():
            column.used += k

    def _link(self, k: int, codes: np.ndarray) -> None:
        """Set the link bits of each new row's predecessor (same robot, same block) whose
        next_obs image equals the new row's obs image."""
        if not self._link_bits:
            return
        base = self._last.count + self._pending
        block = self.schema.block_rows
        link_col = self._columns[LINK]
        for j, code in enumerate(codes.tolist()):
            row = base + j
            prev = self._last_row.get(code)
            self._last_row[code] = row
            if prev is None or prev // block != row // block:
                continue
            for next_col, obs_col, bit in self._link_bits:
                a = next_col.rows[prev - next_col.start].reshape(-1)
                b = obs_col.rows[row - obs_col.start].reshape(-1)
                if a.size % 8 == 0:  # compare as 8-byte words
                    a, b = a.view(np.uint64), b.view(np.uint64)
                if np.array_equal(a, b):
                    link_col.rows[prev - link_col.start] |= bit

    def _open_shards(self, fsync: bool) -> None:
        """Open the shard that each field's next chunk goes to, if it holds committed chunks
        (dropping what an interrupted commit left after them); estimate each field's encoded
        bytes per row from its newest chunk (for RetentionConfig.max_bytes)."""
        for column in self._columns.values():
            spec = column.spec
            complete = self._last.count // spec.chunk_rows
            j, i = divmod(complete, spec.shard_chunks)
            if i:
                column.shard = ShardWriter(column.folder / chunk_name(spec, j),
                                           spec.shard_chunks, committed=i)
                column.shard_index = j
                column.shard.flush(fsync)
            if complete > self._last.first // spec.chunk_rows:  # the newest chunk's size
                if i:
                    _, nbytes = column.shard.entry(i - 1)
                else:
                    j, i = divmod(complete - 1, spec.shard_chunks)
                    _, nbytes = read_entry(column.folder / chunk_name(spec, j),
                                           spec.shard_chunks, i)
                column.bytes_per_row = aligned(nbytes) / spec.chunk_rows

    def _plan_retention(self, marker: CommitMarker):
        """(first, min_episode) after evicting what the caps ask for, or None."""
        cfg = self._retention
        first, end = marker.first, marker.count
        target = first
        if cfg.max_rows is not None and end - first > cfg.max_rows:
            target = max(target, end - int(cfg.max_rows * cfg.low_water))
        if cfg.max_bytes is not None:
            per_row = sum(c.bytes_per_row for c in self._columns.values())
            if (end - first) * per_row > cfg.max_bytes:
                target = max(target, end - int(cfg.max_bytes * cfg.low_water / per_row))
        if cfg.max_age_s is not None:
            target = max(target, self._first_younger(marker, time.time_ns()
                                                     - int(cfg.max_age_s * 1e9)))
        if target <= first:
            return None
        reader = self._row_reader()
        min_episode = list(marker.min_episode) + [0] * (len(marker.robots)
                                                         - len(marker.min_episode))
        if EPISODE not in self.schema.by_name:
            return target, tuple(min_episode)
        step = 1 << 14
        for lo in range(first, target, step):
            rows = reader.read_range(lo, min(target, lo + step), [ROBOT_ID, EPISODE], marker)
            for code in np.unique(rows[ROBOT_ID]).tolist():
                top = int(rows[EPISODE][rows[ROBOT_ID] == code].max())
                min_episode[code] = max(min_episode[code], top + 1)
        bound = np.asarray(min_episode, np.int64)
        new_first = end
        for lo in range(target, end, step):
            rows = reader.read_range(lo, min(end, lo + step), [ROBOT_ID, EPISODE], marker)
            ok = np.flatnonzero(rows[EPISODE] >= bound[rows[ROBOT_ID]])
            if ok.size:
                new_first = lo + int(ok[0])
                break
        return new_first, tuple(min_episode)

    def _first_younger(self, marker: CommitMarker, cutoff_ns: int) -> int:
        """First row at or after ``marker.first`` whose age field is >= cutoff (or count)."""
        reader = self._row_reader()
        field = self._retention.age_field
        step = 1 << 14
        for lo in range(marker.first, marker.count, step):
            stamps = reader.read_range(lo, min(marker.count, lo + step), [field], marker)[field]
            young = np.flatnonzero(stamps >= cutoff_ns)
            if young.size:
                return lo + int(young[0])
        return marker.count

    def _scan_episodes(self, marker: CommitMarker) -> tuple[int, ...]:
        """Highest episode_id per robot code, read from the rows (once, for a store whose
        marker does not carry it yet; every later marker does)."""
        top = [max(-1, e - 1) for e in marker.min_episode] + [-1] * (
            len(marker.robots) - len(marker.min_episode))
        if EPISODE not in self.schema.by_name or marker.count == 0:
            return tuple(top)
        reader = self._row_reader()
        step = 1 << 16
        for lo in range(marker.first, marker.count, step):
            rows = reader.read_range(lo, min(marker.count, lo + step), [ROBOT_ID, EPISODE],
                                     marker)
            for code in np.unique(rows[ROBOT_ID]).tolist():
                top[code] = max(top[code], int(rows[EPISODE][rows[ROBOT_ID] == code].max()))
        return tuple(top)

    def _row_reader(self):
        if self._reader is None:
            from .reader import ReplayReader
            self._reader = ReplayReader(self.info.root, decoded_cache_bytes=4 << 20)
        return self._reader

    def _delete_below(self, old_first: int, new_first: int) -> None:
        """Delete the shard files wholly below the new watermark (after its marker)."""
        for column in self._columns.values():
            per_shard = column.spec.chunk_rows * column.spec.shard_chunks
            for j in range(old_first // per_shard, new_first // per_shard):
                (column.folder / chunk_name(column.spec, j)).unlink(missing_ok=True)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f'{self.info.root}: writer is closed')
        if self._error is not None:
            raise StoreError(f'{self.info.root}: a commit failed ({self._error!r}); reopen '
                             'the store to recover') from self._error

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

    def _source_of(self, records):
        """(field -> values getter, n, robot ids, seqs) after checking the field names."""
        expected = {f.name for f in self.schema.fields if f.name != LINK}
        if isinstance(records, Mapping):
            keys = set(records)
            n = len(records[ROBOT_ID]) if ROBOT_ID in records else 0
            get = records.__getitem__
        else:
            records = list(records)
            n = len(records)
            keys = set(records[0]) if records else set()
            for i, r in enumerate(records):
                if set(r) != keys:
                    diff = sorted(set(r) ^ keys)
                    raise ValueError(f'record {i} has different fields than record 0: {diff}')
            get = lambda name: [r[name] for r in records]  # noqa: E731
        missing = sorted(expected - keys) if n else []
        extra = sorted(keys - expected)
        if missing or extra:
            raise ValueError(f'records must have exactly the schema fields: missing {missing}, '
                             f'unknown {extra}')
        if n == 0:
            return get, 0, [], np.zeros(0, np.int64)
        robot_ids = list(get(ROBOT_ID))
        if len(robot_ids) != n:
            raise ValueError(f"column 'robot_id' has {len(robot_ids)} rows, expected {n}")
        seqs = np.asarray(get(SEQ))
        if seqs.shape != (n,) or seqs.dtype.kind not in 'iu':
            raise ValueError(f"field 'seq' must be {n} integers, got {seqs.dtype} {seqs.shape}")
        return get, n, robot_ids, seqs.astype(np.int64)


def _commit_info(marker: CommitMarker, new_rows: int) -> CommitInfo:
    return CommitInfo(marker.count, new_rows, MappingProxyType(dict(zip(marker.robots,
                                                                        marker.seqs))),
                      marker.commit_id, marker.first,
                      MappingProxyType(dict(zip(marker.robots, marker.episodes or ()))))


def _check_array(spec: FieldSpec, array: np.ndarray, n: int) -> None:
    if array.shape != (n, *spec.shape):
        raise ValueError(f'field {spec.name!r} expects rows of shape {spec.shape}, got '
                         f'{array.shape[1:]} for {array.shape[0]} rows')
    if array.dtype != spec.dtype and not np.can_cast(array.dtype, spec.dtype, 'same_kind'):
        raise ValueError(f'field {spec.name!r} expects {spec.dtype}, got {array.dtype} (cast '
                         'it explicitly)')


def _stack_into(spec: FieldSpec, values: list, out: np.ndarray) -> None:
    """Copy per-record values into ``out`` once (no intermediate array for large rows)."""
    if spec.shape == () or spec.row_bytes < 1024:
        array = np.asarray(values)
        _check_array(spec, array, len(out))
        np.copyto(out, array, casting='same_kind')
        return
    for i, value in enumerate(values):
        value = np.asarray(value)
        if value.shape != spec.shape:
            raise ValueError(f'field {spec.name!r} expects rows of shape {spec.shape}, got '
                             f'{value.shape} (record {i})')
        if value.dtype != spec.dtype and not np.can_cast(value.dtype, spec.dtype, 'same_kind'):
            raise ValueError(f'field {spec.name!r} expects {spec.dtype}, got {value.dtype} '
                             '(cast it explicitly)')
        out[i] = value


def _encode_chunk(column: _Column, chunk: np.ndarray, zero) -> bytes:
    if zero is not None and zero.size:
        chunk[zero] = 0  # linked next_obs images: the reader takes the next row's obs
    return column.codec.encode(chunk)


def _write_chunks(column: _Column, chunks: list[tuple[int, bytes]], fsync: bool) -> None:
    """Append a commit's chunks of one field to its shards; flush and fdatasync them."""
    spec, created = column.spec, False
    for k, data in chunks:
        j, i = divmod(k, spec.shard_chunks)
        created |= column.open_shard(j, fsync)
        column.shard.append(i, data)
        column.bytes_per_row = (0.8 * column.bytes_per_row
                                + 0.2 * aligned(len(data)) / spec.chunk_rows)
    column.shard.flush(fsync)
    if created and fsync:
        fsync_dir(column.folder)
    if column.shard_index * spec.shard_chunks + spec.shard_chunks - 1 == chunks[-1][0]:
        column.shard.close()  # full
        column.shard, column.shard_index = None, -1


def _check_retention(info: StoreInfo, cfg: RetentionConfig) -> None:
    if cfg.max_age_s is not None:
        spec = info.schema.by_name.get(cfg.age_field)
        if spec is None or spec.shape != () or spec.dtype.kind not in 'iu':
            raise ValueError(f'RetentionConfig.age_field {cfg.age_field!r} must be a scalar '
                             f'integer field of the store; known: {sorted(info.schema.by_name)}')
