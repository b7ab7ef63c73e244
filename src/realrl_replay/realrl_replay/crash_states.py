"""Crash-state checking of the writer: what a power cut may leave, not only a SIGKILL.

A SIGKILL keeps the page cache, so every write the writer made reaches the disk. A power cut
keeps only what was synced, and, of the rest, any subset. ``trace_ingest`` records (with
``fs_trace.Recorder``) the writer's file-system operations while it ingests transitions of
three robots with pipelined commits, as the replay node does (append while the previous
commit runs, acknowledge once its Future returned), and logs each acknowledgement.
``check_trace`` builds, for a crash after each operation, the states POSIX ordering allows
(``fs_trace.CrashStates``), writes each into a fresh folder, recovers it with
``ReplayWriter.open``, continues (one more transition per robot, committed), reads every row
back with ``ReplayReader`` and judges it.

A state is bad when
* the store cannot be opened (the trace starts from a durable store, so no crash may make it
  unopenable, acknowledged rows or not);
* fewer rows are committed than were acknowledged (lost), or a count no commit had;
* the committed rows are not exactly the appended transitions, in order, each once (lost,
  duplicated, reordered), or a row differs in any byte from its transition (torn) -- rows
  committed but not yet acknowledged included: a marker must never count a row that is not
  whole;
* the recovered store cannot take and read back one more commit (stuck).

``marker_before_data_fsync`` plants the ordering bug the checker must find: shard files are
fdatasync-ed only after the commit marker that counts them was written and fdatasync-ed.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
from collections import Counter
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import StoreConfig, WriterConfig
from .fs_trace import CrashState, CrashStates, Op, Recorder, Snapshot, replay_all
from .layout import LOCK_FILE, MarkerSlots
from .reader import ReplayReader
from .schema import ROBOT_ID, SEQ
from .shards import ShardWriter
from .synthetic import TransitionFactory
from .writer import ReplayWriter

ROBOTS = ('arm0', 'arm1', 'arm2')
STORE = StoreConfig(target_chunk_bytes=16 << 10, min_chunk_rows=4, max_chunk_rows=64,
                    large_row_bytes=512, max_shard_chunks=3)
"""Small chunks (8 rows of 24x24 images) and shards of 3 chunks, so that a hundred commits
complete many chunks and create many shard files (and their folders' syncs)."""


def crash_schema(image_hw: tuple[int, int] = (24, 24)) -> dict:
    """The node's layout, small: state, one camera (obs and next_obs, linked), action,
    reward, flags (plus the reserved robot_id, seq and link fields)."""
    h, w = image_hw
    return {'obs/state': ((6,), np.float32), 'next_obs/state': ((6,), np.float32),
            'obs/image_0': ((h, w, 3), np.uint8), 'next_obs/image_0': ((h, w, 3), np.uint8),
            'action': ((3,), np.float32), 'reward': ((), np.float32),
            'terminated': ((), np.bool_), 'episode_id': ((), np.int64)}


def crash_factory(image_hw: tuple[int, int], seed: int) -> TransitionFactory:
    """Transitions of ``crash_schema`` (rendered-looking frames with sensor noise)."""
    return TransitionFactory(crash_schema(image_hw), noise=1.5, bank_size=16, seed=seed,
                             episode_len=20)


@dataclass
class Trace:
    """A recorded ingest: the folder it started from, the operations, what was appended."""

    snapshot: Snapshot
    ops: list[Op]
    expected: list[tuple[str, int]]
    """(robot, seq) of every transition the writer accepted, in append (row) order."""
    counts: set[int]
    """Row counts of every commit started (0 for the empty store)."""
    commits: int
    """Commits acknowledged during the trace."""
    image_hw: tuple[int, int]
    seed: int
    """Of the transitions' factory."""


@contextmanager
def marker_before_data_fsync():
    """Plant the ordering bug: shards are fdatasync-ed after the marker, not before it."""
    deferred: list[Path] = []
    real_flush, real_write = ShardWriter.flush, MarkerSlots.write

    def flush(shard, fsync):
        if fsync and shard.dirty:
            deferred.append(shard.path)
        real_flush(shard, False)

    def write(slots, marker, schema, fsync):
        real_write(slots, marker, schema, fsync)
        while deferred:
            fd = os.open(deferred.pop(0), os.O_RDONLY)
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)

    ShardWriter.flush, MarkerSlots.write = flush, write
    try:
        yield
    finally:
        ShardWriter.flush, MarkerSlots.write = real_flush, real_write


def trace_ingest(workdir: Path, commits: int, seed: int = 0, image_hw=(24, 24),
                 planted: bool = False) -> Trace:
    """Create a store in ``workdir``/store and record ``commits`` acknowledged commits."""
    root = Path(workdir) / 'store'
    schema = crash_schema(image_hw)
    ReplayWriter.create(root, schema, {'bench': 'crash_states'}, STORE,
                        WriterConfig(fsync=True)).close()
    fac = crash_factory(image_hw, seed)
    rnd = random.Random(seed)
    top = dict.fromkeys(ROBOTS, -1)
    expected, counts, acked = [], {0}, 0
    recorder = Recorder(root, ignore=(LOCK_FILE,))  # its pid only: no data
    with recorder, (marker_before_data_fsync() if planted else nullcontext()):
        writer = ReplayWriter.open(root, WriterConfig(fsync=True, io_threads=2))
        inflight = None
        while acked < commits:
            robot = rnd.choice(ROBOTS)
            first = max(0, top[robot] + 1 - (rnd.randint(1, 3) if rnd.random() < 0.2 else 0))
            seqs = np.arange(first, first + rnd.randint(1, 9))   # sometimes a re-send
            accepted = writer.append(fac.make(robot, seqs))
            expected += [(robot, int(s)) for s, ok in zip(seqs, accepted) if ok]
            top[robot] = max(top[robot], int(seqs[-1]))
            if inflight is not None:   # the previous commit ran while we appended
                count = inflight.result().count
                recorder.ack(count)
                counts.add(count)      # every commit started is waited for and acknowledged
                acked += 1
                inflight = None
            if writer.pending and acked < commits:
                inflight = writer.commit_async(boundary=rnd.random() < 0.5)
        writer.close(commit=False)
    after = Snapshot.take(root)
    after.files[LOCK_FILE] = recorder.snapshot.files[LOCK_FILE]
    replayed = replay_all(recorder.snapshot, recorder.ops)
    if replayed.files != after.files or replayed.dirs != after.dirs:
        raise AssertionError(f'{root}: the recorded operations do not rebuild the folder (a '
                             'write went around the recorder)')
    return Trace(recorder.snapshot, recorder.ops, expected, counts, acked, tuple(image_hw),
                 seed)


@dataclass
class CheckReport:
    """What ``check_trace`` found."""

    states: int = 0
    points: int = 0
    bad: int = 0
    kinds: Counter = field(default_factory=Counter)
    examples: list = field(default_factory=list)


def check_trace(trace: Trace, workdir: Path, states_per_point: int = 8, seed: int = 0,
                max_states: int | None = None) -> CheckReport:
    """Check up to ``states_per_point`` distinct crash states after each operation."""
    states = CrashStates(trace.snapshot, trace.ops)
    judge = _Judge(trace)
    rnd = random.Random(seed)
    report = CheckReport()
    folder = Path(workdir) / 'state'
    seen: set[bytes] = set()   # states (files and acknowledged rows) already checked
    for k in states.points():
        states.advance(k)
        report.points += 1
        for state in states.sample(states_per_point, rnd, seen):
            problem = judge.check(state, folder)
            report.states += 1
            if problem is not None:
                report.bad += 1
                report.kinds[problem.split(':')[0]] += 1
                if len(report.examples) < 5:
                    report.examples.append(f'after op {k} ({_describe(trace.ops, k)}): '
                                           f'{problem}')
            if max_states is not None and report.states >= max_states:
                return report
    return report


def _describe(ops: list[Op], k: int) -> str:
    if not k:
        return 'start'
    op = ops[k - 1]
    return f'{op.kind} {op.path or op.inode}'


class _Judge:
    """Recovers crash states and judges them against a trace's transitions.

    Everything after ``ReplayWriter.open`` (one more commit, reading every row back) depends
    only on the folder as recovery left it, so its verdict is kept by a digest of that folder:
    many crash states recover to the same one.
    """

    def __init__(self, trace: Trace):
        self.trace = trace
        self.fac = crash_factory(trace.image_hw, trace.seed)
        self.want = _expected_rows(self.fac, trace.expected)
        self.verdicts: dict[bytes, str | None] = {}

    def check(self, state: CrashState, folder: Path) -> str | None:
        """None if ``state`` recovers correctly, else 'kind: what went wrong'."""
        if folder.exists():
            shutil.rmtree(folder)
        state.materialize(folder)
        try:
            return self._judge(folder, state.acked)
        finally:
            shutil.rmtree(folder)

    def _judge(self, folder: Path, acked: int) -> str | None:
        try:
            writer = ReplayWriter.open(folder, WriterConfig(fsync=False, io_threads=1))
        except Exception as e:  # noqa: BLE001 -- any failure of recovery is a finding
            return f'unopenable: {e!r}'
        try:
            count = writer.count
            if count < acked:
                return f'lost: {count} rows committed after recovery, {acked} acknowledged'
            if count not in self.trace.counts:
                return f'lost: {count} rows committed, a count no commit had'
            key = _digest(folder)
            if key in self.verdicts:
                return self.verdicts[key]
            more = [(r, writer.committed_seq(r) + 1) for r in ROBOTS]
            for robot, seq in more:
                writer.append(self.fac.make(robot, [seq]))
            writer.commit()
        except Exception as e:  # noqa: BLE001 -- the store must take the next commit
            return f'stuck: {e!r}'
        finally:
            writer.close(commit=False)
        self.verdicts[key] = verdict = self._read_back(folder, count, more)
        return verdict

    def _read_back(self, folder: Path, count: int, more: list) -> str | None:
        try:
            reader = ReplayReader(folder, decoded_cache_bytes=0)
            rows = reader.read_range(0, reader.count)
        except Exception as e:  # noqa: BLE001 -- a failed read of committed rows is a finding
            return f'torn: committed rows cannot be read back ({e!r})'
        got = [(reader.robot_names[c], int(s)) for c, s in zip(rows[ROBOT_ID], rows[SEQ])]
        want = self.trace.expected[:count] + more
        if got != want:
            kind = 'duplicated' if len(set(got)) < len(got) else 'lost'
            return f'{kind}: rows are not the appended transitions in order ({len(got)} rows)'
        extra = _expected_rows(self.fac, more)
        torn = 0
        for name, column in self.want.items():
            expect = np.concatenate([column[:count], extra[name]])
            torn += int((rows[name] != expect).reshape(len(expect), -1).any(1).sum())
        return f'torn: {torn} field rows differ from their transitions' if torn else None


def _expected_rows(fac: TransitionFactory, ids: list[tuple[str, int]]) -> dict:
    """Every field (but robot_id and seq) of the transitions ``ids``, in that order."""
    out = {}
    for robot in {r for r, _ in ids}:
        where = np.array([i for i, (r, _) in enumerate(ids) if r == robot])
        cols = fac.make(robot, [ids[i][1] for i in where])
        for name, values in cols.items():
            if name in (ROBOT_ID, SEQ):
                continue
            if name not in out:
                out[name] = np.zeros((len(ids), *values.shape[1:]), values.dtype)
            out[name][where] = values
    return out


def _digest(folder: Path) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(folder.rglob('*')):
        h.update(str(path.relative_to(folder)).encode() + b'\0')
        if path.is_file():
            h.update(path.read_bytes())
    return h.digest()
