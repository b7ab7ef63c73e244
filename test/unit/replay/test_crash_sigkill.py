"""Real SIGKILLs of a writer process at random moments, with a reader process checking rows."""
import numpy as np
from _replay_fixtures import factory, make_writer

from realrl_replay import ReplayReader, crash_harness


def test_sigkilled_writer_loses_and_duplicates_nothing_and_readers_never_see_torn_rows(
        tmp_path):
    report = crash_harness.run(tmp_path / 's', kills=12, robots=3, fsync=True, seed=7,
                               kill_after_s=(0.01, 0.25))
    assert report.kills == 12
    assert report.lost == 0 and report.duplicated == 0 and report.out_of_order == 0
    assert report.torn == 0 and report.reader_checks > 0
    assert report.count == report.sent > 0
    assert all(v >= 0 for v in report.acked.values())


def test_committed_rows_are_visible_to_a_reader_at_once(tmp_path):
    fac = factory()
    with make_writer(tmp_path / 's') as w:
        reader = ReplayReader(tmp_path / 's')
        for i in range(20):
            w.append(fac.make('a', np.arange(7 * i, 7 * i + 7)))
            info = w.commit()
            assert reader.refresh() == info.count
            rows = reader.read([info.count - 1])
            assert rows['seq'][0] == 7 * i + 6
