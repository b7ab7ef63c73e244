import numpy as np
import pytest

from realrl_driver.core.safety import ActionGuard


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
