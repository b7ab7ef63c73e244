"""Unit tests of the MuJoCo reach arm (realrl_driver.robots.mujoco_arm.sim)."""

import numpy as np
import pytest
from gl_probe import require_offscreen_rendering

from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig, MujocoArmSim


@pytest.fixture(scope='module')
def sim():
    return MujocoArmSim(ArmSimConfig(), seed=0)


def random_rollout(sim: MujocoArmSim, seed: int, steps: int):
    rng = np.random.default_rng(seed)
    states = [sim.reset(seed)]
    for _ in range(steps):
        states.append(sim.apply(rng.uniform(-1, 1, sim.action_dim)))
    return np.stack(states)


def test_layout_covers_the_state_in_order(sim):
    layout = sim.observation_layout
    assert list(layout) == ['joint_pos', 'joint_vel', 'ee_pos', 'target_pos', 'ee_to_target']
    stops = 0
    for start, stop in layout.values():
        assert start == stops and stop > start
        stops = stop
    assert stops == sim.state_dim == 17
    assert sim.action_dim == 3
    np.testing.assert_array_equal(sim.action_low, -np.ones(3))
    np.testing.assert_array_equal(sim.action_high, np.ones(3))


def test_state_is_float32_and_consistent(sim):
    state = sim.reset(3)
    assert state.dtype == np.float32 and state.shape == (sim.state_dim,)
    part = {k: state[a:b] for k, (a, b) in sim.observation_layout.items()}
    np.testing.assert_allclose(part['ee_pos'], sim.ee_pos, atol=1e-6)
    np.testing.assert_allclose(part['target_pos'], sim.target_pos, atol=1e-6)
    np.testing.assert_allclose(part['ee_to_target'], part['target_pos'] - part['ee_pos'],
                               atol=1e-6)
    np.testing.assert_allclose(part['joint_vel'], 0.0)


def test_substeps_follow_control_rate(sim):
    assert sim.substeps == round(1 / (sim.cfg.control_hz * sim.model.opt.timestep))
    t0 = sim.data.time
    sim.apply(np.zeros(3))
    assert sim.data.time - t0 == pytest.approx(1 / sim.cfg.control_hz)


def test_same_seed_same_episode():
    a = random_rollout(MujocoArmSim(seed=11), seed=5, steps=30)
    b = random_rollout(MujocoArmSim(seed=99), seed=5, steps=30)
    np.testing.assert_array_equal(a, b)


def test_seeds_and_unseeded_resets_draw_new_targets(sim):
    t1 = sim.reset(1).copy()
    t2 = sim.reset(2).copy()
    t3 = sim.reset().copy()
    sl = slice(*sim.observation_layout['target_pos'])
    assert not np.allclose(t1[sl], t2[sl])
    assert not np.allclose(t2[sl], t3[sl])


def test_targets_lie_in_workspace_away_from_the_ee(sim):
    lo, hi = np.array(sim.cfg.workspace_low), np.array(sim.cfg.workspace_high)
    for seed in range(50):
        sim.reset(seed)
        assert np.all(sim.target_pos >= lo) and np.all(sim.target_pos <= hi)
        assert np.linalg.norm(sim.target_pos - sim.ee_pos) >= sim.cfg.target_min_distance_m
        assert np.all(sim.ee_pos >= lo) and np.all(sim.ee_pos <= hi)


@pytest.mark.parametrize('axis', [0, 1, 2])
@pytest.mark.parametrize('sign', [1.0, -1.0])
def test_action_moves_ee_in_commanded_direction(sim, axis, sign):
    sim.reset(0)
    action = np.zeros(3)
    action[axis] = sign
    before = sim.ee_pos
    sim.apply(action)
    moved = sim.ee_pos - before
    step = sim.cfg.max_ee_step_m
    assert sign * moved[axis] > 0.8 * step
    assert sign * moved[axis] < 1.1 * step
    off_axis = np.delete(moved, axis)
    assert np.all(np.abs(off_axis) < 0.2 * step)


def test_actions_are_clipped_to_unit_box():
    a, b = MujocoArmSim(seed=0), MujocoArmSim(seed=0)
    np.testing.assert_array_equal(a.apply([5.0, -7.0, 1.0]), b.apply([1.0, -1.0, 1.0]))


def test_random_actions_keep_ee_in_workspace_and_joints_in_limits(sim):
    lo, hi = np.array(sim.cfg.workspace_low), np.array(sim.cfg.workspace_high)
    q_lo, q_hi = sim.model.jnt_range[:, 0], sim.model.jnt_range[:, 1]
    joints = slice(*sim.observation_layout['joint_pos'])
    rng = np.random.default_rng(0)
    sim.reset(0)
    for i in range(400):
        if i % 100 == 0:
            sim.reset()
        # Saturated pushes drive the arm into the box's faces and corners.
        state = sim.apply(np.sign(rng.uniform(-1, 1, 3)))
        assert np.all(sim.ee_pos >= lo - 0.005) and np.all(sim.ee_pos <= hi + 0.005), sim.ee_pos
        assert np.all(state[joints] >= q_lo - 1e-3) and np.all(state[joints] <= q_hi + 1e-3)
        assert np.all(sim.data.ctrl >= q_lo) and np.all(sim.data.ctrl <= q_hi)


def test_greedy_actions_reach_the_target(sim):
    for seed in range(5):
        sim.reset(seed)
        for _ in range(40):
            delta = sim.target_pos - sim.ee_pos
            sim.apply(np.clip(delta / sim.cfg.max_ee_step_m, -1, 1))
        assert np.linalg.norm(sim.target_pos - sim.ee_pos) < 0.01


@pytest.mark.parametrize('action', [np.zeros(2), np.zeros((3, 1, 2)), [np.nan, 0, 0]])
def test_bad_actions_are_rejected(sim, action):
    with pytest.raises(ValueError, match='action'):
        sim.apply(action)


@pytest.mark.parametrize('kwargs, field', [
    ({'control_hz': 0.0}, 'control_hz'),
    ({'max_ee_step_m': -0.1}, 'max_ee_step_m'),
    ({'workspace_low': (0.5, -0.2, 0.06)}, 'workspace_low'),
    ({'workspace_high': (0.4, 0.2)}, 'workspace_high'),
    ({'model_path': '/nonexistent/arm.xml'}, 'model_path'),
    ({'target_min_distance_m': 5.0}, 'target_min_distance_m'),
    ({'ik_iterations': 0}, 'ik_iterations'),
    ({'nullspace_gain': 2.0}, 'nullspace_gain'),
])
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ArmSimConfig(**kwargs)


@pytest.mark.parametrize('kwargs, field', [
    ({'control_hz': 30.0}, 'control_hz'),  # 1/30 s is not a whole number of 2 ms steps
    ({'home_qpos': (0.0, 0.1)}, 'home_qpos'),
    ({'home_qpos': (0.0, 3.0, 1.0, 0.0)}, 'home_qpos'),
    ({'ee_site': 'nose'}, 'ee_site'),
])
def test_sim_rejects_configs_that_do_not_fit_the_model(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MujocoArmSim(ArmSimConfig(**kwargs))


def test_render_gives_rgb_images(sim):
    sim.reset(0)
    require_offscreen_rendering()
    front = sim.render('front', width=64, height=48)
    wrist = sim.render('wrist', width=64, height=48)
    for img in (front, wrist):
        assert img.shape == (48, 64, 3) and img.dtype == np.uint8
        assert img.std() > 0  # not a blank frame
    with pytest.raises(ValueError, match='camera'):
        sim.render('top', 64, 48)
    with pytest.raises(ValueError, match='offwidth'):
        sim.render('front', 10_000, 48)
    sim.close()
