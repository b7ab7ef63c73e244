"""Property tests: any sequence of appends (with re-sends), commits, reopens and crashes at
any step of a commit leaves exactly the committed transitions, in order, each once."""
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import realrl_replay.layout as layout
import realrl_replay.writer as writer_mod
from realrl_replay import ReplayReader, ReplayWriter, WriterConfig
from _replay_fixtures import factory, make_writer

ROBOTS = ('a', 'b', 'c')
FAC = factory()


class Crash(Exception):
    pass


def _abandon(w: ReplayWriter) -> None:
    """What SIGKILL leaves: no cleanup, lock released by the kernel."""
    w._closed = True
    w._pool.shutdown()
    w._lock.release()


class _Faults:
    """Makes the next commit die at one of its I/O steps, leaving what a SIGKILL would."""

    def __init__(self, monkeypatch):
        self.point = None
        self.chunk_calls = 0
        real_chunk, real_marker = writer_mod.write_chunk, layout.CommitMarker.write

        def chunk(path, data, fsync):
            self.chunk_calls += 1
            if self.point == ('chunk', self.chunk_calls):
                view = memoryview(data).cast('B')
                Path(path).write_bytes(bytes(view[:len(view) // 2]))  # cut short
                raise Crash
            real_chunk(path, data, fsync)

        def marker(m, root, schema, fsync):
            if self.point == ('marker_tmp',):
                (root / 'commit.bin.partial').write_bytes(b'RRCOMMIT\x10\x00')
                raise Crash
            real_marker(m, root, schema, fsync)
            if self.point == ('after_rename',):
                raise Crash

        monkeypatch.setattr(writer_mod, 'write_chunk', chunk)
        monkeypatch.setattr(layout.CommitMarker, 'write', marker)

    def arm(self, point) -> None:
        self.point, self.chunk_calls = point, 0


op = st.one_of(
    st.tuples(st.just('append'), st.sampled_from(ROBOTS), st.integers(-6, 4),
              st.integers(1, 40)),
    st.tuples(st.just('commit')),
    st.tuples(st.just('reopen')),
    st.tuples(st.just('crash'), st.one_of(
        st.tuples(st.just('chunk'), st.integers(1, 12)),
        st.just(('marker_tmp',)), st.just(('after_rename',)))),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_any_history_keeps_exactly_the_committed_transitions(monkeypatch, ops):
    faults = _Faults(monkeypatch)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / 's'
        w = make_writer(root)
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
                w.commit()
                committed += pending
                pending = []
            elif o[0] == 'reopen':
                w.close(commit=False)
                w, pending = ReplayWriter.open(root, WriterConfig(fsync=False)), []
            else:
                faults.arm(o[1])
                try:
                    w.commit()
                    died_before_marker = False
                except Crash:
                    died_before_marker = o[1] != ('after_rename',)
                faults.arm(None)
                _abandon(w)
                if not died_before_marker:
                    committed += pending  # durable; at most the acknowledgement was lost
                pending = []
                w = ReplayWriter.open(root, WriterConfig(fsync=False))
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
        rows = reader.read_range(0, reader.count)
        got = [(reader.robot_names[c], int(s)) for c, s in zip(rows['robot_id'], rows['seq'])]
        assert got == committed
        assert FAC.check(rows, reader.robot_names).all()
        assert not list(root.rglob('*.partial'))
