"""The 7-DoF (Panda-like) and 6-DoF (UR5e-like) arms through the one MuJoCo arm class."""
import dataclasses

import mujoco
import numpy as np
import pytest
from gl_probe import require_offscreen_rendering

from realrl_driver.robots.mujoco_arm.sim import ARM_MODELS, ArmSimConfig, MujocoArmSim

ARMS = {'panda7': 7, 'ur5e6': 6}


@pytest.fixture(scope='module', params=sorted(ARMS))
def sim(request):
    return MujocoArmSim(ArmSimConfig(model=request.param, control_hz=10.0), seed=0)


def settle_at_center(sim: MujocoArmSim, seed: int) -> None:
    """Reset, then move the end effector to the middle of the workspace and let it settle."""
    center = 0.5 * (np.array(sim.cfg.workspace_low) + np.array(sim.cfg.workspace_high))
    sim.reset(seed)
    for _ in range(25):
        sim.apply(np.clip((center - sim.ee_pos) / sim.cfg.max_ee_step_m, -1, 1))
    for _ in range(3):
        sim.apply(np.zeros(3))


def test_each_arm_reports_its_joints_kind_and_layout(sim):
    n = ARMS[sim.cfg.model]
    assert sim.model.nq == n and len(sim.joint_names) == n
    assert sim.kind == ARM_MODELS[sim.cfg.model].kind
    assert sim.state_dim == 2 * n + 9 and sim.action_dim == 3
    assert sim.observation_layout['joint_pos'] == (0, n)
    assert sim.observation_layout['ee_to_target'] == (2 * n + 6, 2 * n + 9)
    assert set(sim.camera_names) >= {'front', 'wrist'}


@pytest.mark.parametrize('model', sorted(ARMS))
@pytest.mark.parametrize('mode', ['ee_delta', 'joint_delta'])
def test_same_seed_same_episode(model, mode):
    def rollout(sim_seed):
        sim = MujocoArmSim(ArmSimConfig(model=model, action_mode=mode), seed=sim_seed)
        rng = np.random.default_rng(3)
        states = [sim.reset(7)]
        states += [sim.apply(rng.uniform(-1, 1, sim.action_dim)) for _ in range(20)]
        return np.stack(states)
    np.testing.assert_array_equal(rollout(1), rollout(99))


@pytest.mark.parametrize('axis', [0, 1, 2])
@pytest.mark.parametrize('sign', [1.0, -1.0])
def test_action_moves_ee_in_commanded_direction(sim, axis, sign):
    settle_at_center(sim, seed=axis)
    action = np.zeros(3)
    action[axis] = sign
    before = sim.ee_pos
    sim.apply(action)
    moved = sim.ee_pos - before
    step = sim.cfg.max_ee_step_m
    assert 0.85 * step < sign * moved[axis] < 1.1 * step, moved
    assert np.all(np.abs(np.delete(moved, axis)) < 0.15 * step), moved


def test_saturated_actions_respect_workspace_and_joint_limits(sim):
    lo, hi = np.array(sim.cfg.workspace_low), np.array(sim.cfg.workspace_high)
    q_lo, q_hi = sim.model.jnt_range[:, 0], sim.model.jnt_range[:, 1]
    joints = slice(*sim.observation_layout['joint_pos'])
    rng = np.random.default_rng(1)
    for i in range(240):
        if i % 60 == 0:
            sim.reset(i)
        state = sim.apply(np.sign(rng.uniform(-1, 1, 3)))
        assert np.all(sim.ee_pos >= lo - 0.005) and np.all(sim.ee_pos <= hi + 0.005), sim.ee_pos
        assert np.all(state[joints] >= q_lo - 1e-3) and np.all(state[joints] <= q_hi + 1e-3)
        assert np.all(sim.data.ctrl >= q_lo) and np.all(sim.data.ctrl <= q_hi)


def test_greedy_actions_reach_targets_at_the_workspace_corners(sim):
    lo, hi = np.array(sim.cfg.workspace_low), np.array(sim.cfg.workspace_high)
    for corner in (lo, hi, np.array([hi[0], lo[1], lo[2]]), np.array([lo[0], hi[1], hi[2]])):
        sim.reset(0)
        for _ in range(40):
            sim.apply(np.clip((corner - sim.ee_pos) / sim.cfg.max_ee_step_m, -1, 1))
        assert np.linalg.norm(corner - sim.ee_pos) < 0.01, (corner, sim.ee_pos)


@pytest.mark.parametrize('model', sorted(ARMS))
def test_joint_delta_moves_each_joint_and_stops_at_its_limit(model):
    sim = MujocoArmSim(ArmSimConfig(model=model, action_mode='joint_delta', control_hz=10.0),
                       seed=0)
    n = ARMS[model]
    assert sim.action_dim == n
    step = sim.cfg.max_joint_step_rad
    for j in range(n):
        sim.reset(0)
        before = sim.data.qpos.copy()
        action = np.zeros(n)
        action[j] = 1.0
        sim.apply(action)
        moved = sim.data.qpos - before
        assert 0.8 * step < moved[j] < 1.1 * step, (j, moved)
        assert np.all(np.abs(np.delete(moved, j)) < 0.2 * step), (j, moved)
    sim.reset(0)
    q_lo, q_hi = sim.model.jnt_range[:, 0], sim.model.jnt_range[:, 1]
    for _ in range(120):  # pushing one way for long enough reaches the limits
        sim.apply(-np.ones(n))
        # Targets never pass a limit; MuJoCo's limits are soft, so a folded arm pressed
        # into the floor may sit a little past one.
        assert np.all(sim.data.ctrl >= q_lo) and np.all(sim.data.qpos >= q_lo - 0.03)
    assert np.any(np.isclose(sim.data.ctrl, q_lo)) and np.all(sim.data.qpos <= q_hi)


def test_unknown_model_and_torque_motors_are_refused(tmp_path):
    with pytest.raises(ValueError,
                       match=r"model 'kuka'.*known: \['panda7', 'reach_arm', 'ur5e6'\]"):
        ArmSimConfig(model='kuka')
    spec = mujoco.MjSpec.from_file(ArmSimConfig(model='ur5e6').model_path)
    for act in list(spec.actuators):
        act.gainprm[0], act.biastype = 1.0, mujoco.mjtBias.mjBIAS_NONE  # now torque motors
    path = tmp_path / 'ur5e_motors.xml'
    path.write_text(spec.to_xml())
    with pytest.raises(ValueError, match='not a position servo'):
        MujocoArmSim(ArmSimConfig(model='ur5e6', model_path=str(path)))
    cfg = ArmSimConfig(model='panda7')
    with pytest.raises(ValueError, match='home_qpos'):
        MujocoArmSim(dataclasses.replace(cfg, home_qpos=(0.0,) * 6))


def test_front_and_wrist_cameras_render(sim):
    sim.reset(0)
    require_offscreen_rendering()
    front = sim.render('front', width=64, height=48)
    wrist = sim.render('wrist', width=64, height=48)
    for img in (front, wrist):
        assert img.shape == (48, 64, 3) and img.dtype == np.uint8 and img.std() > 0
    sim.close()
