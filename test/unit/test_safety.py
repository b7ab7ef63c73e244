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


# -- the boundary band: exactly at a bound is inside; within `tolerance` beyond it is accepted
# and set onto the bound; further out is rejected -------------------------------------------
F32_ABOVE_ONE = float(np.nextafter(np.float32(1), np.float32(2)))  # 1 + 1.2e-7, in the band


@pytest.mark.parametrize('action', [[1.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.999999, -0.999999, 0]])
def test_actions_at_or_inside_the_bounds_pass_unchanged(guard, action):
    assert guard.check(action, 0, 0, 0, 0).ok
    out = guard.bounded(action)
    assert out.dtype == np.float32 and out.tolist() == np.float32(action).tolist()
    assert guard.clipped == 0 and guard.rejected_total == 0


@pytest.mark.parametrize('action, expected', [
    ([F32_ABOVE_ONE, 0.0, 0.0], [1.0, 0.0, 0.0]),
    ([0.0, -1.0 - 5e-7, 0.0], [0.0, -1.0, 0.0]),
    ([1.0 + 1e-6, -1.0 - 1e-6, 0.5], [1.0, -1.0, 0.5]),  # exactly at the band's edge
])
def test_values_in_the_tolerance_band_are_accepted_and_set_onto_the_bound(guard, action,
                                                                          expected):
    assert guard.check(action, 0, 0, 0, 0).ok
    out = guard.bounded(action)
    assert out.tolist() == expected
    assert np.all(out >= guard.low) and np.all(out <= guard.high)
    assert guard.clipped == 1 and guard.accepted == 1 and guard.rejected_total == 0


@pytest.mark.parametrize('action', [[1.0 + 1.1e-6, 0, 0], [0, -1.0 - 2e-6, 0], [0, 0, 1.00001],
                                    [float(np.float32(1.0000011)), 0, 0]])
def test_values_just_beyond_the_band_are_rejected_as_out_of_range(guard, action):
    verdict = guard.check(action, 0, 0, 0, 0)
    assert not verdict.ok and verdict.reason == 'out_of_range'
    assert guard.rejected['out_of_range'] == 1 and guard.accepted == 0


def test_a_bound_float32_cannot_hold_is_never_exceeded_after_the_cast():
    guard = ActionGuard([-0.05], [0.05])  # float32(0.05) is 0.0500000007 > 0.05
    a = [float(np.float32(0.05))]
    assert guard.check(a, 0, 0, 0, 0).ok
    out = guard.bounded(a)
    assert out.dtype == np.float32 and float(out[0]) <= 0.05 and 0.05 - float(out[0]) < 1e-8


class _Robot:
    """Records what it is commanded; bounds [-1, 1] in float32, as every robot of ours."""

    state_dim, action_dim, cameras = 1, 2, ()
    action_low, action_high = -np.ones(2, np.float32), np.ones(2, np.float32)

    def __init__(self):
        self.applied = []

    def reset(self, seed):
        return np.zeros(1)

    def apply(self, action):
        self.applied.append(np.asarray(action).tolist())
        return np.zeros(1)

    def hold(self):
        pass


def test_the_loop_commands_the_robot_with_the_bounded_action():
    from realrl_driver.core.episode_loop import EpisodeLoop, LoopConfig
    robot = _Robot()
    loop = EpisodeLoop(LoopConfig(), robot)
    loop.tick(0.0)
    assert loop.on_action([F32_ABOVE_ONE, -1.0], 0, 0)
    assert loop.tick(0.1).applied.tolist() == [1.0, -1.0]
    assert robot.applied == [[1.0, -1.0]] and loop.guard.clipped == 1
