"""The shared space of robots of several kinds (realrl_common.embodiment): padding, one-hot,
masks."""
import numpy as np
import pytest

from realrl_common.embodiment import SharedSpace, embodiment_key


def arm(rid, kind, joints, low=-1.0, high=1.0, action_dim=None):
    names = [('joint_pos', joints), ('joint_vel', joints), ('ee_pos', 3), ('target_pos', 3),
             ('ee_to_target', 3)]
    layout, at = {}, 0
    for name, width in names:
        layout[name] = [at, at + width]
        at += width
    adim = action_dim or joints
    return {'robot_id': rid, 'kind': kind, 'state_dim': at, 'state_layout': layout,
            'action_dim': adim, 'action_low': [low] * adim, 'action_high': [high] * adim}


PANDA = arm('panda0', 'mujoco_panda7', 7)
UR5E = arm('ur5e0', 'mujoco_ur5e6', 6, low=-0.5, high=0.5)
GYM = {'robot_id': 'reacher0', 'kind': 'gym_Reacher_v5', 'state_dim': 10,
       'state_layout': {'obs': [0, 10]}, 'action_dim': 2, 'action_low': [-1, -1],
       'action_high': [1, 1]}


def test_states_are_aligned_by_layout_name_and_padded_with_zeros():
    space = SharedSpace.from_descriptions({'ur5e0': UR5E, 'panda0': PANDA,
                                           'panda1': dict(PANDA, robot_id='panda1')})
    assert space.keys == ('mujoco_panda7/23/7', 'mujoco_ur5e6/21/6')  # robots by sorted id
    assert space.layout == {'joint_pos': (0, 7), 'joint_vel': (7, 14), 'ee_pos': (14, 17),
                            'target_pos': (17, 20), 'ee_to_target': (20, 23)}
    assert (space.state_dim, space.action_dim, space.onehot_dim, space.obs_dim) == (23, 7, 2, 25)
    ur = space.index(UR5E)
    state = np.arange(1, 22, dtype=np.float32)
    padded = space.pad_state(ur, state)
    np.testing.assert_array_equal(padded[0:6], state[0:6])       # joint_pos, then one zero
    assert padded[6] == 0 and padded[13] == 0
    np.testing.assert_array_equal(padded[20:23], state[18:21])   # ee_to_target lines up
    np.testing.assert_array_equal(space.unpad_state(ur, padded), state)
    panda = space.index(PANDA)
    np.testing.assert_array_equal(space.pad_state(panda, np.arange(23)), np.arange(23))
    obs = space.actor_obs(np.stack([padded, padded]), np.array([ur, panda]))
    np.testing.assert_array_equal(obs[:, 23:], [[0, 1], [1, 0]])


def test_actions_are_a_prefix_scaled_per_robot_and_masked():
    space = SharedSpace.from_descriptions({'panda0': PANDA, 'ur5e0': UR5E})
    ur, panda = space.index(UR5E), space.index(PANDA)
    np.testing.assert_array_equal(space.mask[[panda, ur]],
                                  [[1] * 7, [1] * 6 + [0]])
    padded = np.stack([space.pad_action(ur, np.full(6, 0.25)),
                       space.pad_action(panda, np.full(7, -1.0))])
    assert padded.shape == (2, 7) and padded[0, 6] == 0
    unit = space.to_unit(padded, np.array([ur, panda]))
    np.testing.assert_allclose(unit, [[0.5] * 6 + [0.0], [-1.0] * 7])
    with pytest.raises(ValueError, match='action has 7 values'):
        space.pad_action(ur, np.zeros(7))
    with pytest.raises(ValueError, match='state has 5 values'):
        space.pad_state(ur, np.zeros(5))


def test_one_embodiment_is_the_robot_itself():
    space = SharedSpace.from_descriptions({'panda0': PANDA,
                                           'panda1': dict(PANDA, robot_id='panda1')})
    assert (space.obs_dim, space.action_dim, space.onehot_dim) == (23, 7, 0)
    state = np.random.default_rng(0).normal(size=(4, 23)).astype(np.float32)
    np.testing.assert_array_equal(space.actor_obs(state, np.zeros(4, int)), state)


def test_disjoint_layouts_are_concatenated_and_loose_layouts_are_one_slice():
    loose = {'robot_id': 'x', 'kind': 'legacy', 'state_dim': 4, 'action_dim': 2,
             'action_low': [-1, -1], 'action_high': [1, 1]}  # no layout at all
    space = SharedSpace.from_descriptions({'panda0': PANDA, 'reacher0': GYM, 'x': loose})
    assert list(space.layout) == ['joint_pos', 'joint_vel', 'ee_pos', 'target_pos',
                                  'ee_to_target', 'obs', 'state']
    assert (space.state_dim, space.action_dim, space.onehot_dim) == (37, 7, 3)
    g = space.index(GYM)
    np.testing.assert_array_equal(np.nonzero(space.pad_state(g, np.ones(10)))[0],
                                  np.arange(23, 33))


def test_json_round_trip_and_mismatches_name_the_robots():
    space = SharedSpace.from_descriptions({'panda0': PANDA, 'ur5e0': UR5E, 'reacher0': GYM})
    again = SharedSpace.from_json(space.to_json())
    assert again.keys == space.keys and again.layout == space.layout
    np.testing.assert_array_equal(again.low, space.low)
    with pytest.raises(ValueError, match='panda0 and panda9 are both mujoco_panda7/23/7'):
        SharedSpace.from_descriptions({'panda0': PANDA,
                                       'panda9': arm('panda9', 'mujoco_panda7', 7, low=-2.0)})
    with pytest.raises(ValueError, match="'ur5e0' is mujoco_ur5e6/21/6; this space holds"):
        SharedSpace.from_descriptions({'panda0': PANDA}).index(UR5E)
    assert embodiment_key(GYM) == 'gym_Reacher_v5/10/2'
