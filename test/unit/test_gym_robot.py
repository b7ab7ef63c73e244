"""A gymnasium environment as a robot: the core (GymRobot) and the loop with env rewards."""
import gymnasium
import numpy as np
import pytest
from gl_probe import require_offscreen_rendering

from realrl_common.config import ConfigError, build_config
from realrl_driver.core.episode_loop import EpisodeLoop, LoopConfig
from realrl_driver.robots.gym.config import GymDriverConfig
from realrl_driver.robots.gym.robot import GymEnvConfig, GymRobot, make_gym_robot


def test_pendulum_is_described_by_its_spaces_and_scores_like_the_env():
    robot = GymRobot(GymEnvConfig('Pendulum-v1', kwargs={'g': 9.0}))
    assert (robot.state_dim, robot.action_dim, robot.kind) == (3, 1, 'gym_Pendulum_v1')
    assert robot.observation_layout == {'obs': (0, 3)}
    np.testing.assert_array_equal(robot.action_low, [-2.0])
    np.testing.assert_array_equal(robot.action_high, [2.0])
    env = gymnasium.make('Pendulum-v1', g=9.0)
    obs, _ = env.reset(seed=4)
    np.testing.assert_allclose(robot.reset(4), obs, rtol=1e-6)
    for a in np.linspace(-2, 2, 7):
        obs, reward, terminated, truncated, _ = env.step(np.array([a], np.float32))
        state = robot.apply([a])
        assert state.dtype == np.float32
        np.testing.assert_allclose(state, obs, rtol=1e-6)
        label = robot.outcome()
        assert label.reward == pytest.approx(reward) and not label.success
        assert (label.terminated, label.truncated) == (terminated, truncated)
    with pytest.raises(ValueError, match='action must have 1 values'):
        robot.apply([0.0, 0.0])


def test_loop_with_env_rewards_ends_an_episode_when_the_env_terminates():
    robot = GymRobot(GymEnvConfig('InvertedPendulum-v5'))
    assert (robot.state_dim, robot.action_dim) == (4, 1)
    loop = EpisodeLoop(LoopConfig(robot_id='pole', reward_source='env', episode_max_steps=500,
                                  seed=1), robot)
    out, t = loop.tick(0.0), 0.0
    transitions, episodes = [], []
    while not episodes and t < 100:
        t += 0.05
        obs = out.observation
        loop.on_action([3.0], obs.episode_id, obs.step)  # full push: the pole falls soon
        out = loop.tick(t)
        if out.transition is not None:
            transitions.append(out.transition)
        if out.episode is not None:
            episodes.append(out.episode)
    assert loop.counters['waiting_label'] == 0  # the env labels at once, nothing waits
    last = transitions[-1]
    assert last.terminated and not last.truncated and episodes[0].success is False
    assert all(tr.reward == 1.0 for tr in transitions[:-1])
    assert not any(tr.terminated for tr in transitions[:-1])
    assert out.observation.episode_id == 1 and out.observation.step == 0  # reset


def test_loop_truncates_at_its_step_limit():
    robot = GymRobot(GymEnvConfig('Pendulum-v1'))
    loop = EpisodeLoop(LoopConfig(reward_source='env', episode_max_steps=3), robot)
    out = loop.tick(0.0)
    results = []
    for k in range(1, 5):
        loop.on_action([0.5], out.observation.episode_id, out.observation.step)
        out = loop.tick(0.1 * k)
        if out.transition is not None:
            results.append(out.transition)
    assert [tr.truncated for tr in results] == [False, False, True]
    assert all(tr.reward < 0 for tr in results)  # Pendulum's cost, carried as reward
    assert out.observation.episode_id == 1


def test_reacher_renders_its_env_camera():
    robot = GymRobot(GymEnvConfig('Reacher-v5'), cameras=('env',), image_size=(48, 64))
    assert (robot.state_dim, robot.action_dim, robot.camera_names) == (10, 2, ('env',))
    robot.reset(0)
    require_offscreen_rendering()
    frame = robot.render('env', 64, 48)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0
    robot.close()


def test_bad_environments_and_configs_say_what_to_fix():
    with pytest.raises(ValueError, match="env_id 'NoSuchEnv-v0'"):
        GymEnvConfig('NoSuchEnv-v0')
    with pytest.raises(ValueError, match='action space Discrete.*only continuous'):
        GymRobot(GymEnvConfig('CartPole-v1'))
    with pytest.raises(ValueError, match='cameras'):
        GymRobot(GymEnvConfig('Pendulum-v1'), cameras=('front',))
    with pytest.raises(ValueError, match='env.kwargs'):
        GymRobot(GymEnvConfig('Pendulum-v1', kwargs={'gravity_of_mars': 3.7}))
    cfg = build_config(GymDriverConfig, {'env': {'env_id': 'Pendulum-v1', 'kwargs': {'g': 3.7}}})
    assert cfg.reward_source == 'env' and make_gym_robot(cfg).env.unwrapped.g == 3.7
    with pytest.raises(ConfigError, match="env: env_id 'Nope-v1' is not a registered"):
        build_config(GymDriverConfig, {'env': {'env_id': 'Nope-v1'}})


def test_env_rewards_need_a_robot_that_scores_itself():
    from realrl_driver.robots.mujoco_arm.sim import MujocoArmSim
    with pytest.raises(ValueError, match='reward_source: env needs a robot that scores'):
        EpisodeLoop(LoopConfig(reward_source='env'), MujocoArmSim())
    with pytest.raises(ConfigError, match='reward_source must be one of'):
        LoopConfig(reward_source='oracle')


# ------------------------------------------- Dict observations, another package's environment
DICT_ENV = 'gym_dict_env:DictPointReach-v0'  # test/unit/gym_dict_env.py registers it


def test_a_dict_env_of_another_package_splits_into_state_and_cameras_and_trains():
    import torch
    from gym_dict_env import pixel

    from realrl_learner.sac import SAC, SACConfig
    from realrl_policy.models import ActorConfig
    cfg = build_config(GymDriverConfig, {'env': {'env_id': DICT_ENV}, 'cameras': ['pixels'],
                                         'image_size': [16, 16]})
    robot = make_gym_robot(cfg)
    assert (robot.kind, robot.state_dim, robot.action_dim) == ('gym_DictPointReach_v0', 4, 2)
    assert robot.observation_layout == {'agent/pos': (0, 2), 'goal': (2, 4)}
    assert robot.camera_names == ('pixels',)
    loop = EpisodeLoop(LoopConfig(reward_source='env', episode_max_steps=20, seed=3,
                                  cameras=('pixels',), image_size=(16, 16)), robot)
    rng = np.random.default_rng(0)
    out, transitions = loop.tick(0.0), []
    for k in range(1, 61):
        obs = out.observation
        image = obs.images['pixels']
        assert image.shape == (16, 16, 3) and image.dtype == np.uint8
        assert tuple(image[pixel(obs.state[:2])]) == (255, 255, 255)  # the point, from state
        if tuple(image[pixel(obs.state[2:4])]) != (255, 255, 255):
            assert tuple(image[pixel(obs.state[2:4])]) == (255, 0, 0)  # the goal, unless hidden
        loop.on_action(rng.uniform(-1, 1, 2), obs.episode_id, obs.step)
        out = loop.tick(0.1 * k)
        if out.transition is not None:
            transitions.append(out.transition)
    assert len(transitions) >= 50
    for tr in transitions:  # the env's reward is minus the distance between the state's parts
        assert tr.reward == pytest.approx(-np.linalg.norm(tr.next_state[:2] - tr.next_state[2:]),
                                          abs=1e-5)
        point = tr.next_images['pixels'][pixel(tr.next_state[:2])]
        assert tuple(point) == (255, 255, 255)  # the next image is the next state's
    batch = {'obs': torch.tensor(np.stack([tr.state for tr in transitions])),
             'action': torch.tensor(np.stack([tr.action for tr in transitions])),
             'reward': torch.tensor([tr.reward for tr in transitions]),
             'next_obs': torch.tensor(np.stack([tr.next_state for tr in transitions])),
             'terminated': torch.tensor([float(tr.terminated) for tr in transitions])}
    sac = SAC(4, 2, SACConfig(actor=ActorConfig(hidden_sizes=(32,)), critic_hidden_sizes=(32,),
                              batch_size=len(transitions)))
    losses = [sac.update(batch)['train/critic_loss'] for _ in range(60)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])  # the critics fit its rewards
    robot.close()


def test_dict_envs_and_module_ids_say_what_to_fix():
    from realrl_driver.robots.gym.observations import split_space
    with pytest.raises(ValueError, match=r"env_id 'no_such_pkg:X-v0': module 'no_such_pkg'"):
        GymEnvConfig('no_such_pkg:X-v0')
    with pytest.raises(ValueError, match="importing 'gym_dict_env' registers no gymnasium "
                                         "environment 'Other-v0'"):
        GymEnvConfig('gym_dict_env:Other-v0')
    with pytest.raises(ValueError, match=r"cameras: \['front'\] unknown.*'env', 'pixels'"):
        GymRobot(GymEnvConfig(DICT_ENV), cameras=('front',))
    box = gymnasium.spaces.Box(-1, 1, (2,))
    space = gymnasium.spaces.Dict({'arm': gymnasium.spaces.Dict(
        {'pos': box, 'gripper': gymnasium.spaces.Discrete(2)})})
    with pytest.raises(ValueError, match="entry 'arm/gripper' is Discrete"):
        split_space(space, 'X-v0')
    images_only = gymnasium.spaces.Dict({'rgb': gymnasium.spaces.Box(0, 255, (8, 8, 3), 'uint8')})
    with pytest.raises(ValueError, match='no state entry'):
        split_space(images_only, 'X-v0')
