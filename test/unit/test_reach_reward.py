"""Unit tests of the reach reward (realrl_reward.reach_reward)."""

import numpy as np
import pytest

from realrl_reward.reach_reward import ReachReward, ReachRewardConfig

# A layout like the arm's, with the positions not at the front of the state.
LAYOUT = {'joint_pos': (0, 2), 'ee_pos': (2, 5), 'target_pos': (5, 8)}


def state(ee, target, joints=(0.1, -0.2)):
    return np.array([*joints, *ee, *target], dtype=np.float32)


def test_dense_reward_is_minus_distance():
    reward, success = ReachReward().label(state((0, 0, 0), (0.3, 0.4, 0.0)), LAYOUT)
    assert reward == pytest.approx(-0.5, abs=1e-6)
    assert success is False


@pytest.mark.parametrize('distance, expected', [(0.049, True), (0.05, True), (0.051, False)])
def test_success_at_the_radius(distance, expected):
    reward_fn = ReachReward(ReachRewardConfig(success_radius_m=0.05))
    _, success = reward_fn.label(np.array([0, 0, 0, 0, 0, distance, 0, 0], np.float64), LAYOUT)
    assert success is expected


def test_dense_success_bonus_is_added_on_success_only():
    reward_fn = ReachReward(ReachRewardConfig(success_bonus=1.0))
    near, ok = reward_fn.label(state((0, 0, 0), (0.03, 0, 0)), LAYOUT)
    far, not_ok = reward_fn.label(state((0, 0, 0), (0.3, 0, 0)), LAYOUT)
    assert ok and near == pytest.approx(1.0 - 0.03, abs=1e-6)
    assert not not_ok and far == pytest.approx(-0.3, abs=1e-6)


def test_sparse_reward():
    reward_fn = ReachReward(ReachRewardConfig(mode='sparse'))
    assert reward_fn.label(state((0, 0, 0), (0.01, 0, 0)), LAYOUT) == (0.0, True)
    assert reward_fn.label(state((0, 0, 0), (0.2, 0, 0)), LAYOUT) == (-1.0, False)


def test_custom_keys():
    layout = {'hand': (0, 3), 'goal': (3, 6)}
    reward_fn = ReachReward(ReachRewardConfig(ee_key='hand', target_key='goal'))
    reward, _ = reward_fn.label(np.array([0, 0, 0, 0, 0, 0.2]), layout)
    assert reward == pytest.approx(-0.2)


def test_labels_the_arm_state():
    from realrl_driver.robots.mujoco_arm.sim import MujocoArmSim
    sim = MujocoArmSim(seed=0)
    reward, success = ReachReward().label(sim.reset(4), sim.observation_layout)
    assert reward == pytest.approx(-np.linalg.norm(sim.target_pos - sim.ee_pos), abs=1e-6)
    assert not success


@pytest.mark.parametrize('bad_state', [np.zeros(7), np.zeros(9), np.zeros((2, 8))])
def test_state_not_matching_layout_is_rejected(bad_state):
    with pytest.raises(ValueError, match='layout'):
        ReachReward().label(bad_state, LAYOUT)


def test_missing_key_lists_known_keys():
    with pytest.raises(ValueError, match=r"ee_key 'ee_pos'.*known: \['ee', 'target_pos'\]"):
        ReachReward().label(np.zeros(6), {'ee': (0, 3), 'target_pos': (3, 6)})


def test_slice_must_hold_three_values():
    with pytest.raises(ValueError, match='3 values'):
        ReachReward().label(np.zeros(7), {'ee_pos': (0, 4), 'target_pos': (4, 7)})


def test_non_finite_state_is_rejected():
    with pytest.raises(ValueError, match='non-finite'):
        ReachReward().label(state((np.nan, 0, 0), (0, 0, 0)), LAYOUT)


@pytest.mark.parametrize('kwargs, field', [
    ({'mode': 'shaped'}, 'mode'),
    ({'success_radius_m': 0.0}, 'success_radius_m'),
    ({'success_radius_m': float('nan')}, 'success_radius_m'),
    ({'success_bonus': float('inf')}, 'success_bonus'),
    ({'ee_key': ''}, 'ee_key'),
    ({'target_key': 'ee_pos'}, 'target_key'),
])
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ReachRewardConfig(**kwargs)
