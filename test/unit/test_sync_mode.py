"""Sync mode: the robot waits after each episode while the learner trains on it.

The driver's side is the episode loop's hold ('waiting_weights', in ticks); the learner's is
the trainer's sync round on a real store; the graph's one switch (its top-level mode) sets
both, and a node that disagrees with it is refused. The whole loop through DDS runs in
bench/async_vs_sync.py.
"""
import numpy as np
import pytest
from store_rows import store_record
from test_episode_loop import PointRobot, run_step
from test_graph import DEMO, MULTI

from realrl_bringup.cli import main as realrl_main
from realrl_bringup.evaluate import eval_description
from realrl_bringup.graph import build_graph, load_graph, read_description
from realrl_bringup.progress import Progress
from realrl_common.config import ConfigError, build_config
from realrl_driver.core.episode_loop import EpisodeLoop, LoopConfig
from realrl_learner.sac import SACConfig
from realrl_learner.trainer import Trainer, TrainerConfig
from realrl_replay.reader import ReplayReader
from realrl_replay.transition_schema import transition_schema
from realrl_replay.writer import ReplayWriter


def finish_episode(loop, t, version):
    """Ticks until the episode of 2 steps ends (the pipeline's 3rd tick closes it); returns the
    next time."""
    for _ in range(3):
        out = run_step(loop, t, version=version)
        t += 0.1
    assert out.episode is not None and out.episode.policy_version == version
    return t


def test_sync_hold_waits_for_acks_then_for_newer_weights():
    robot = PointRobot()
    loop = EpisodeLoop(LoopConfig(episode_max_steps=2, sync_weights=True), robot)
    loop.tick(0.0)
    t = finish_episode(loop, 0.1, version=3)
    assert len(loop.outbox) == 2 and loop.obs.step == 0
    applied = len(robot.applied)
    # unacknowledged transitions: it holds even with an action from newer weights
    out = run_step(loop, t, version=4)
    assert out.repeated and len(robot.applied) == applied
    assert loop.counters['waiting_weights'] == 1
    loop.on_ack(2)
    # acknowledged, but the policy still serves the weights the episode used: dropped
    for i in range(3):
        out = run_step(loop, t + 0.1 * i, version=3)
        assert out.repeated and len(robot.applied) == applied
    assert loop.counters['waiting_weights'] == 4 and loop.counters['waiting_action'] == 0
    out = run_step(loop, t + 0.5, version=4)  # newer weights: the episode goes on
    assert not out.repeated and out.observation.step == 1 and len(robot.applied) == applied + 1
    assert loop.counters['weights_waits'] == 1


def test_async_loop_never_waits_for_weights():
    robot = PointRobot()
    loop = EpisodeLoop(LoopConfig(episode_max_steps=2), robot)
    loop.tick(0.0)
    t = finish_episode(loop, 0.1, version=3)
    out = run_step(loop, t, version=3)  # same weights, nothing acknowledged: it goes on
    assert not out.repeated and out.observation.step == 1
    assert loop.counters['waiting_weights'] == 0


def test_a_persons_command_needs_no_new_weights():
    robot = PointRobot()
    loop = EpisodeLoop(LoopConfig(episode_max_steps=2, sync_weights=True), robot)
    loop.tick(0.0)
    t = finish_episode(loop, 0.1, version=3)
    loop.on_ack(2)
    loop.on_action(np.array([0.5]), loop.obs.episode_id, 0, 3, intervention=True)
    out = loop.tick(t)
    assert not out.repeated and robot.applied[-1] == 0.5


DESC = {'robot_id': 'arm0', 'state_dim': 2, 'action_dim': 1, 'action_low': [-1.0],
        'action_high': [1.0], 'cameras': [], 'image_size': [0, 0]}


def episode(writer, first_seq, n, rng, end=True):
    """Rows of one episode, n of them; the last one truncated (with end)."""
    writer.append([store_record(writer, {
        'robot_id': 'arm0', 'seq': first_seq + i,
        'obs/state': rng.normal(size=2).astype(np.float32),
        'next_obs/state': rng.normal(size=2).astype(np.float32),
        'action': rng.uniform(-1, 1, 1).astype(np.float32), 'reward': np.float32(rng.normal()),
        'terminated': False, 'truncated': end and i == n - 1, 'episode_id': first_seq,
        'step': i}) for i in range(n)])
    writer.commit()


def test_sync_rounds_train_on_finished_episodes_only(tmp_path):
    rng = np.random.default_rng(0)
    writer = ReplayWriter.create(tmp_path / 's', transition_schema(DESC),
                                 {'robots': {'arm0': DESC}})
    cfg = TrainerConfig(mode='sync', sac=SACConfig(batch_size=8, learning_starts=10,
                                                   updates_per_step=2.0))
    trainer = Trainer(cfg, ReplayReader(tmp_path / 's'), tmp_path / 'ckpt')
    episode(writer, 1, 8, rng)
    # an episode shorter than learning_starts: no update, yet a round (a new version)
    assert trainer.sync_round() and trainer.sac.updates == 0
    assert not trainer.sync_round()  # nothing new finished: no round
    episode(writer, 9, 8, rng)
    assert trainer.sync_round() and trainer.sac.updates == (16 - 10) * 2
    episode(writer, 17, 6, rng, end=False)  # an episode under way: the robot is not waiting
    assert not trainer.sync_round() and trainer.sac.updates == 12
    episode(writer, 23, 2, rng)
    assert trainer.sync_round() and trainer.sac.updates == (24 - 10) * 2
    trainer.close()
    writer.close()


def test_mode_config_errors():
    with pytest.raises(ConfigError, match=r"mode must be one of \['async', 'sync'\]"):
        build_config(TrainerConfig, {'mode': 'synchronous'})
    with pytest.raises(ConfigError, match='sync_weights'):
        build_config(LoopConfig, {'sync_weights': 'maybe'})
    with pytest.raises(ConfigError, match=r"mode must be one of \['async', 'sync'\].*got "
                                          r"'synchronous'"):
        load_graph(DEMO, {'run_dir': '/tmp/r'}, ['mode=synchronous'])


def test_one_switch_sets_the_learner_and_every_driver(capsys):
    for overrides in (['mode=sync'], ['learner.mode=sync'],  # the one key, or the learner's
                      ['learner.mode=sync', 'driver.sync_weights=true']):  # as files had it
        graph = load_graph(MULTI, {'run_dir': '/tmp/r'}, overrides)
        assert graph.mode == 'sync' and graph.configs['/learner'].mode == 'sync'
        assert [graph.configs[d.fqn].sync_weights for d in graph.drivers] == [True] * 4
        learner = next(n for n in graph.nodes if n.name == 'learner')
        assert learner.parameters['mode'] == 'sync'  # what the node's process is given
    graph = load_graph(MULTI, {'run_dir': '/tmp/r'})
    assert graph.mode == 'async' and graph.configs['/learner'].mode == 'async'
    assert realrl_main(['check', '--config', str(MULTI), '--set', 'mode=sync']) == 0
    assert capsys.readouterr().out.endswith("'ur5e1']), mode sync\n")
    assert not any(graph.configs[d.fqn].sync_weights for d in graph.drivers)
    assert all(d.parameters['sync_weights'] is False for d in graph.drivers)
    assert 'mode' not in graph.description  # the run snapshots what the user wrote


def test_a_driver_or_learner_against_the_graphs_mode_is_refused_naming_mode():
    with pytest.raises(ConfigError, match=r"node /arm0/driver parameters: sync_weights is True"
                                          r", but the graph's mode is 'async'; remove "
                                          r"sync_weights and set the graph's top-level mode: "
                                          r"sync"):
        load_graph(DEMO, {'run_dir': '/tmp/r'}, ['driver.sync_weights=true'])
    with pytest.raises(ConfigError, match=r"sync_weights is False, but the graph's mode is "
                                          r"'sync'"):
        load_graph(MULTI, {'run_dir': '/tmp/r'}, ['mode=sync', 'ur5e1/driver.sync_weights=false'])
    with pytest.raises(ConfigError, match=r"node /learner parameters: mode is 'async', but the "
                                          r"graph's mode is 'sync'; remove the learner's mode"):
        load_graph(DEMO, {'run_dir': '/tmp/r'}, ['mode=sync', 'learner.mode=async'])


def test_eval_graph_never_waits_whatever_the_run_was(tmp_path):
    description = read_description(DEMO, ['mode=sync'])
    ckpt = tmp_path / 'latest.pt'
    ckpt.write_bytes(b'')  # the graph checks only that it exists
    graph = build_graph(eval_description(description, ckpt, True, 0), {'run_dir': '/tmp/r'})
    assert graph.mode == 'async'
    assert not any(graph.configs[d.fqn].sync_weights for d in graph.drivers)
    description['nodes'] = [n for n in description['nodes'] if n['name'] != 'learner']
    with pytest.raises(ConfigError, match="mode is 'sync', but the graph has no learner"):
        build_graph(description, {'run_dir': '/tmp/r'})


def test_the_console_names_robots_waiting_for_weights():
    p = Progress()
    p.waiting.update(arm0='weights', arm1='action')
    assert p.waits() == ' | waiting for actions: arm1 | waiting for new weights: arm0'
