"""Unit tests of the peg-insertion task, its expert and its demonstration recorder
(realrl_driver.robots.mujoco_arm: peg_task, peg_expert, peg_config, record_demos)."""

import numpy as np
import pytest
from gl_probe import require_offscreen_rendering

from realrl_common.config import ConfigError, build_config
from realrl_common.plugins import robot_kind
from realrl_driver.robots.mujoco_arm.peg_config import MujocoPegDriverConfig
from realrl_driver.robots.mujoco_arm.peg_expert import PegExpert, run_episode
from realrl_driver.robots.mujoco_arm.peg_task import PegInsertionSim, PegTaskConfig


@pytest.fixture(scope='module')
def sim():
    s = PegInsertionSim(PegTaskConfig(), control_hz=10.0, seed=0)
    yield s
    s.close()


def drive_to(sim, goal, steps):
    """Push the peg tip toward goal (m) for some steps; the labels seen on the way."""
    labels = []
    for _ in range(steps):
        sim.apply(np.clip((np.asarray(goal) - sim.ee_pos) / sim.cfg.max_ee_step_m, -1, 1))
        labels.append(sim.outcome())
    return labels


def test_reset_draws_the_hole_from_the_seed_and_the_state_does_not_hold_it(sim):
    holes, turns = {}, {}
    for seed in (1, 2, 3, 1):
        state = sim.reset(seed)
        holes.setdefault(seed, []).append(sim.hole_top)
        turns.setdefault(seed, []).append(sim.data.mocap_quat[0].copy())
        assert state.shape == (sim.state_dim,) == (20,) and state.dtype == np.float32
    np.testing.assert_array_equal(holes[1][0], holes[1][1])  # same seed, same episode
    np.testing.assert_array_equal(turns[1][0], turns[1][1])
    assert abs(turns[1][0][3] - turns[2][0][3]) > 1e-3  # the block turns too
    assert np.linalg.norm(holes[1][0][:2] - holes[2][0][:2]) > 1e-3
    assert np.linalg.norm(holes[2][0][:2] - holes[3][0][:2]) > 1e-3
    assert list(sim.observation_layout) == ['joint_pos', 'joint_vel', 'ee_pos', 'ee_force']
    state = sim.reset(2)
    a, b = sim.observation_layout['ee_pos']
    np.testing.assert_allclose(state[a:b], sim.ee_pos, atol=1e-6)
    hole = sim.hole_top
    for value in hole[:2]:  # no state entry is a hole coordinate
        assert not np.any(np.isclose(state, value, atol=1e-6))
    assert sim.ee_pos[2] > hole[2] + 0.04 and not sim.outcome().success


def test_success_only_at_depth_inside_the_hole(sim):
    sim.reset(4)
    top = sim.hole_top
    above = drive_to(sim, (top[0], top[1], top[2] + 0.02), 12)
    assert not any(label.success for label in above)
    # A little way in is not yet a success; the insertion depth is.
    shallow = drive_to(sim, (top[0], top[1], top[2] - 0.015), 8)
    assert not any(label.success for label in shallow)
    assert sim.ee_pos[2] < top[2] - 0.01  # it is in the hole, only not deep enough
    deep = drive_to(sim, (top[0], top[1], top[2] - 0.04), 8)
    assert deep[-1].success and deep[-1].terminated and deep[-1].reward == 1.0
    assert sim.ee_pos[2] <= top[2] - sim.task.insert_depth_m


def test_a_peg_pushed_down_beside_the_hole_does_not_succeed(sim):
    sim.reset(5)
    top = sim.hole_top
    labels = drive_to(sim, (top[0] + 0.03, top[1], top[2] + 0.02), 10)
    labels += drive_to(sim, (top[0] + 0.03, top[1], 0.0), 15)
    assert not any(label.success for label in labels)
    assert sim.ee_pos[2] > top[2] - 0.003  # it rests on the block
    force = sim.observe()[slice(*sim.observation_layout['ee_force'])]
    assert force[2] > 50.0  # and the hand feels it


def test_the_expert_solves_seeded_episodes(sim):
    results = [run_episode(sim, PegExpert(sim), seed, 40) for seed in (11, 12, 13)]
    assert all(success for success, _ in results), results
    assert all(steps < 30 for _, steps in results)


def test_an_expert_aiming_beside_the_hole_fails(sim):
    success, _ = run_episode(sim, PegExpert(sim, aim_offset_m=(0.035, 0.0)), 11, 30)
    assert not success


def test_dense_reward_grows_toward_the_inserted_position():
    sim = PegInsertionSim(PegTaskConfig(reward='dense'), control_hz=10.0, seed=0)
    sim.reset(6)
    first = sim.outcome().reward
    expert = PegExpert(sim)
    while not sim.outcome().success:
        sim.apply(expert.act())
    assert first < -0.04 and sim.outcome().reward > 0.9


def test_driver_config_and_robot_kind():
    kind = robot_kind('mujoco_peg')
    cfg = build_config(kind.config, {'peg': {'hole_range_m': [0.02, 0.03]},
                                     'cameras': ['wrist'], 'image_size': [64, 64]})
    assert isinstance(cfg, MujocoPegDriverConfig) and cfg.reward_source == 'env'
    robot = kind.factory()(cfg)
    try:
        assert robot.kind == 'mujoco_peg' and robot.action_dim == 3
        assert set(cfg.state_names()) == set(robot.observation_layout)
        assert 'hold' in robot.capabilities
    finally:
        robot.close()
    with pytest.raises(ConfigError, match='cameras must be among'):
        build_config(kind.config, {'cameras': ['top']})
    with pytest.raises(ConfigError, match='insert_depth_m'):
        build_config(kind.config, {'peg': {'insert_depth_m': 0.08}})
    with pytest.raises(ConfigError, match='control_hz 7'):
        build_config(kind.config, {'control_hz': 7.0})


def test_recorded_demos_open_as_a_demo_store(tmp_path):
    require_offscreen_rendering()
    from realrl_driver.robots.mujoco_arm.record_demos import record_demos
    from realrl_replay.mixer import open_sources
    from realrl_replay.reader import ReplayReader
    from realrl_replay.sampler_config import SamplerConfig
    cfg = build_config(MujocoPegDriverConfig, {'image_size': [32, 32]})
    report = record_demos(tmp_path / 'demos', 2, cfg, seed=7)
    assert report.episodes == 2 and report.successes == 2
    reader = ReplayReader(tmp_path / 'demos')
    assert reader.metadata['source'] == 'demo'
    desc = reader.metadata['robots']['demo']
    assert desc['kind'] == 'mujoco_peg' and desc['state_dim'] == 20
    assert desc['cameras'] == ['front', 'wrist'] and desc['image_size'] == [32, 32]
    assert 'ee_force' in desc['state_layout'] and 'target_pos' not in desc['state_layout']
    rows = reader.read(np.arange(reader.count), ['obs/state', 'action', 'reward', 'terminated',
                                                 'episode_id', 'obs/image_wrist',
                                                 'next_obs/image_front'])
    assert rows['obs/state'].shape == (report.transitions, 20)
    assert rows['obs/image_wrist'].shape == (report.transitions, 32, 32, 3)
    assert rows['next_obs/image_front'].dtype == np.uint8
    assert np.abs(rows['action']).max() <= 1.0
    # Each episode ends in its one success, the only rewarded step.
    assert rows['terminated'].sum() == 2 == rows['reward'].sum()
    ends = np.flatnonzero(rows['terminated'])
    assert set(rows['episode_id'][ends]) == {0, 1}
    mixed = open_sources([str(tmp_path / 'demos')], SamplerConfig(batch_size=4, seed=0))
    try:
        batch = mixed.sample()
        assert batch['obs/image_front'].shape == (4, 32, 32, 3)
    finally:
        mixed.close()


def test_record_demos_command_line(tmp_path, capsys):
    require_offscreen_rendering()
    import json

    from realrl_driver.robots.mujoco_arm.record_demos import main
    (tmp_path / 'params.yaml').write_text('image_size: [16, 16]\ncameras: [wrist]\n')
    args = ['--episodes', '1', '--params', str(tmp_path / 'params.yaml'), '--seed', '3']
    assert main(args + ['--out', str(tmp_path / 'demos')]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report['episodes'] == report['successes'] == 1 and report['transitions'] > 3
    assert main(args + ['--out', str(tmp_path / 'demos')]) == 2  # not an empty folder
    assert 'not an empty folder' in capsys.readouterr().err
    (tmp_path / 'bad.yaml').write_text('peg: {hole_range: [0.1, 0.1]}\n')
    assert main(['--episodes', '1', '--params', str(tmp_path / 'bad.yaml'),
                 '--out', str(tmp_path / 'other')]) == 2
    assert "unknown key 'peg.hole_range'; did you mean 'peg.hole_range_m'" in (
        capsys.readouterr().err)
