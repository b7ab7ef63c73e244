"""The chaos harness's reading of a run: status lines, recovery after a kill, store checks."""
import sys
from pathlib import Path

import numpy as np

from realrl_bringup.chaos import Status, recovery_s, status_lines, store_invariants

sys.path.insert(0, str(Path(__file__).parent / 'replay'))
from _replay_fixtures import factory, make_writer  # noqa: E402

LOG = """realrl: started /replay (pid 1, log replay.log)
[   5.0s] episodes    0 | success(last 0) 0.00 | stored      0 | updates      0 | policy v0 |   0.0 steps/s | nodes 5/5 up
[   6.0s] episodes    2 | success(last 2) 0.50 | stored    123 | updates     14 | policy v3 |  48.9 steps/s | nodes 5/5 up | waiting for actions: arm0
realrl: /policy exited with -9; restarting (log: x)
"""  # noqa: E501


def test_status_lines_are_parsed_and_other_lines_skipped():
    assert status_lines(LOG) == [Status(5.0, 0, 0, 0, 0), Status(6.0, 2, 123, 14, 3)]


def test_recovery_is_when_rows_grow_again_and_a_restarted_learner_learns():
    before = Status(10.0, 1, 100, 50, 2)
    after = [Status(11.0, 1, 104, 50, 2), Status(12.0, 1, 104, 40, 2),
             Status(13.0, 1, 120, 40, 2), Status(14.0, 1, 130, 41, 2)]
    assert recovery_s(before, after, '/policy', 10) == 3.0
    # The learner resumed from an older checkpoint (40) and must learn past it.
    assert recovery_s(before, after, '/learner', 10) == 4.0
    assert recovery_s(before, after[:3], '/learner', 10) is None
    assert recovery_s(before, after[:2], '/policy', 10) is None
    assert recovery_s(None, after, '/policy', 10) is None


def test_store_invariants_count_gaps_per_robot(tmp_path):
    fac = factory()
    with make_writer(tmp_path / 'whole') as w:
        w.append(fac.make('a', np.arange(1, 21)))
        w.append(fac.make('b', np.arange(5, 15)))   # a robot's numbers need not start at 1
    assert store_invariants(tmp_path / 'whole') == {'rows': 30, 'lost': 0, 'duplicated': 0}
    with make_writer(tmp_path / 'gaps') as w:
        w.append(fac.make('a', np.r_[1:8, 10:21]))  # 8 and 9 never stored
        w.append(fac.make('b', np.arange(1, 11)))
    assert store_invariants(tmp_path / 'gaps') == {'rows': 28, 'lost': 2, 'duplicated': 0}
