"""Property tests: any sequence of appends (with re-sends), commits (whole or up to a chunk
boundary), reopens and crashes at any step of a commit leaves exactly the committed
transitions, in order, each once; with next_obs images stored as links and a retention cap
that evicts whole episodes."""
import os
import tempfile
from pathlib import Path

import numpy as np
from _replay_fixtures import factory, make_writer, small_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import realrl_replay.layout as layout
import realrl_replay.shards as shards
from realrl_replay import ReplayReader, ReplayWriter, RetentionConfig, WriterConfig

ROBOTS = ('a', 'b', 'c')
FAC = factory(next_images=True, episode_len=6)
KEEP = RetentionConfig(max_rows=150)
WCFG = WriterConfig(fsync=False, retention=KEEP)


class Crash(Exception):
    pass


def _abandon(w: ReplayWriter) -> None:
    """What SIGKILL leaves: no cleanup, lock released by the kernel."""
    w._closed = True
    w._committer.shutdown()
    w._pool.shutdown()
    for column in w._columns.values():
        if column.shard is not None:
            column.shard.close()
    w._slots.close()
    w._lock.release()


class _Faults:
    """Makes the next commit die at one of its I/O steps, leaving what a SIGKILL would."""

    def __init__(self, monkeypatch):
        self.point = None
        self.calls = {'chunk': 0, 'index_torn': 0}
        real_append, real_flush = shards.ShardWriter.append, shards.ShardWriter.flush
        real_marker = layout.MarkerSlots.write

        def append(shard, i, data):
            self.calls['chunk'] += 1
            if self.point == ('chunk', self.calls['chunk']):
                view = memoryview(data).cast('B')
                with open(shard.path, 'r+b') as f:  # half of the chunk, index not updated
                    f.seek(shard.end)
                    f.write(bytes(view[:len(view) // 2]))
                raise Crash
            real_append(shard, i, data)

        def flush(shard, fsync):
            self.calls['index_torn'] += 1
            if self.point == ('index_torn', self.calls['index_torn']):
                index = shard._index.astype('<u8').tobytes()
                with open(shard.path, 'r+b') as f:  # the new index, cut short
                    f.write(index[:len(index) // 2 + 8])
                raise Crash
            real_flush(shard, fsync)

        def marker(slots, m, schema, fsync):
            if self.point == ('marker_torn',):  # half of the new marker over the old slot
                data = b''.join(bytes(p) for p in m.encode(schema))
                os.pwrite(slots._fds[m.commit_id % 2], data[:len(data) // 2], 0)
                raise Crash
            real_marker(slots, m, schema, fsync)
            if self.point == ('after_marker',):
                raise Crash

        monkeypatch.setattr(shards.ShardWriter, 'append', append)
        monkeypatch.setattr(shards.ShardWriter, 'flush', flush)
        monkeypatch.setattr(layout.MarkerSlots, 'write', marker)

    def arm(self, point) -> None:
        self.point = point
        self.calls = dict.fromkeys(self.calls, 0)


op = st.one_of(
    st.tuples(st.just('append'), st.sampled_from(ROBOTS), st.integers(-6, 4),
              st.integers(1, 40)),
    st.tuples(st.just('commit'), st.booleans()),
    st.tuples(st.just('reopen')),
    st.tuples(st.just('crash'), st.one_of(
        st.tuples(st.just('chunk'), st.integers(1, 12)),
        st.tuples(st.just('index_torn'), st.integers(1, 6)),
        st.just(('marker_torn',)), st.just(('after_marker',)))),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_any_history_keeps_exactly_the_committed_transitions(monkeypatch, ops):
    faults = _Faults(monkeypatch)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / 's'
        w = make_writer(root, schema=small_schema(True), retention=KEEP)
        committed: list[tuple[str, int]] = []
        pending: list[tuple[str, int]] = []
        top = {r: -1 for r in ROBOTS}  # highest seq seen (committed or pending)
        for o in ops:
            if o[0] == 'append':
                _, robot, delta, n = o
                first = max(0, top[robot] + delta)
                seqs = np.arange(first, first + n)
                accepted = w.append(FAC.make(robot, seqs))
                expect = [int(s) > top[robot] for s in seqs]
                assert accepted == expect
                pending += [(robot, int(s)) for s, ok in zip(seqs, expect) if ok]
                top[robot] = max(top[robot], int(seqs[-1]))
            elif o[0] == 'commit':
                k = w.commit_async(boundary=o[1]).result().count - len(committed)
                committed += pending[:k]
                pending = pending[k:]
            elif o[0] == 'reopen':
                w.close(commit=False)
                w, pending = ReplayWriter.open(root, WCFG), []
            else:
                faults.arm(o[1])
                try:
                    w.commit()
                    died_before_marker = False
                except Crash:
                    died_before_marker = o[1] != ('after_marker',)
                faults.arm(None)
                _abandon(w)
                if not died_before_marker:
                    committed += pending  # durable; at most the acknowledgement was lost
                pending = []
                w = ReplayWriter.open(root, WCFG)
            if o[0] != 'append':
                top = {r: max([s for x, s in committed if x == r], default=-1) for r in ROBOTS}
                for r, s in pending:
                    top[r] = max(top[r], s)
                assert w.count == len(committed)
                for r in ROBOTS:
                    assert w.committed_seq(r) == max(
                        [s for x, s in committed if x == r], default=-1)
        w.close(commit=False)
        reader = ReplayReader(root)
        assert reader.count == len(committed) and reader.count - reader.first <= KEEP.max_rows
        idx = np.arange(reader.first, reader.count)
        valid = idx[reader.valid(idx)]
        rows = reader.read(valid)
        got = [(reader.robot_names[c], int(s)) for c, s in zip(rows['robot_id'], rows['seq'])]
        assert got == [committed[i] for i in valid]
        assert FAC.check(rows, reader.robot_names).all()
        kept = {(r, s // FAC.episode_len) for r, s in got}   # episodes: all rows kept or none
        assert {i for i, (r, s) in enumerate(committed) if (r, s // FAC.episode_len) in kept
                } == set(valid.tolist())
        assert not list(root.rglob('*.partial'))
