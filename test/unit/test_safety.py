import numpy as np
import pytest

from realrl_driver.core.safety import ActionGuard, LossCounter


@pytest.fixture
def guard():
    return ActionGuard([-1, -1, -1], [1, 1, 1])


@pytest.mark.parametrize('action, reason', [
    ([0.1, 0.2], 'wrong_length'),
    ([0.1, 0.2, 0.3, 0.4], 'wrong_length'),
    ([[0.1, 0.2, 0.3]], 'wrong_length'),
    ('abc', 'wrong_length'),
    ([0.1, np.nan, 0.0], 'non_finite'),
    ([np.inf, 0.0, 0.0], 'non_finite'),
    ([1.5, 0.0, 0.0], 'out_of_range'),
    ([0.0, -1.01, 0.0], 'out_of_range'),
])
def test_bad_actions_are_rejected_by_reason(guard, action, reason):
    verdict = guard.check(action, 0, 0, 0, 0)
    assert not verdict.ok and verdict.reason == reason
    assert guard.rejected[reason] == 1 and guard.accepted == 0


def test_stale_actions_are_rejected(guard):
    assert guard.check([0, 0, 0], 0, 3, 0, 4).reason == 'stale'
    assert guard.check([0, 0, 0], 1, 4, 2, 4).reason == 'stale'
    assert guard.check([1, -1, 0], 2, 4, 2, 4).ok
    assert guard.rejected_total == 2 and guard.accepted == 1


def test_estop_rejects_everything_until_released(guard):
    guard.estopped = True
    assert guard.check([0, 0, 0], 0, 0, 0, 0).reason == 'estop'
    guard.estopped = False
    assert guard.check([0, 0, 0], 0, 0, 0, 0).ok


def test_bounds_must_be_consistent():
    with pytest.raises(ValueError, match='action_low must be <= action_high'):
        ActionGuard([1, 0], [0, 1])


def test_refused_actions_count_by_reason_and_every_action_is_received_once(guard):
    assert guard.check([0.0, 0.0, 0.0], 0, 0, 0, 0).ok
    assert guard.check([0.0, 0.0, 0.0], 0, 1, 0, 0).reason == 'stale'
    guard.refuse('wrong_robot_id')
    assert dict(guard.rejected) == {'stale': 1, 'wrong_robot_id': 1}
    assert (guard.accepted, guard.rejected_total, guard.received) == (1, 2, 3)
    with pytest.raises(ValueError, match='unknown rejection reason'):
        guard.refuse('bored')


def test_losses_are_gaps_in_each_publishers_numbers_never_counted_twice():
    lost = LossCounter()
    assert lost.taken(b'a', 5) == 0  # first seen: what came before is not ours to count
    assert lost.taken(b'a', 6) == 0 and lost.taken(b'b', 1) == 0
    assert lost.taken(b'a', 10) == 3 and lost.taken(b'b', 3) == 1
    assert lost.taken(b'a', 2) == 0  # numbering restarted (a new publisher, same id)
    assert lost.taken(b'a', None) == 0 and lost.taken(None, 9) == 0  # not numbered
    assert lost.lost == 4
    lost.middleware_lost(3)  # the middleware saw some of the same losses
    assert lost.lost == 4
    lost.middleware_lost(2)
    assert lost.lost == 5  # it saw more than the gaps show
