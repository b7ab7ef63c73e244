"""Robots of several kinds in one experiment, through `realrl train`: the 7-DoF and 6-DoF arms
of config/multi_arm_sim.yaml plus a gymnasium robot that scores itself, one replay store,
one learner, one policy. Every robot's transitions reach the store, actions of each robot's
own length reach every driver (none is rejected), the learner's weights drive every kind,
and the run stops cleanly."""
import json

import numpy as np
import pytest
import yaml
from ros_env import ROOT, isolate, next_domain_id, require_workspace, wait_for
from test_reach_graph import Run, processes_of

MULTI = ROOT / 'config' / 'multi_arm_sim.yaml'
GYM = {'name': 'driver', 'namespace': 'reacher0', 'package': 'realrl_driver',
       'executable': 'gym_driver', 'lifecycle': True, 'restart': 'on_failure',
       'parameters': {'robot_id': 'reacher0', 'control_hz': 10.0, 'episode_max_steps': 50,
                      'env': {'env_id': 'Reacher-v5'},
                      'realtime_priority': 20}}  # as the arms': above the serving nodes'
ACTION_DIMS = {'panda0': 7, 'panda1': 7, 'ur5e0': 6, 'ur5e1': 6, 'reacher0': 2}


def rows(run_dir):
    from realrl_replay.errors import StoreError
    from realrl_replay.reader import ReplayReader
    try:
        reader = ReplayReader(run_dir / 'replay')
    except StoreError:  # not created yet
        return None
    reader.refresh()
    data = reader.read_range(0, reader.count, ['robot_id', 'embodiment', 'action',
                                               'policy_version', 'reward'])
    data['names'] = reader.robot_names
    data['space'] = reader.metadata['space']
    return data


def every_robot_acted_on_learned_weights(run_dir) -> bool:
    data = rows(run_dir)
    if data is None or set(data['names']) != set(ACTION_DIMS):
        return False
    return all(data['policy_version'][data['robot_id'] == code].max(initial=0) >= 1
               for code in range(len(data['names'])))


@pytest.mark.system
def test_arms_of_two_kinds_and_a_gym_robot_share_one_store_learner_and_policy(tmp_path):
    require_workspace()
    isolate(next_domain_id())
    graph = yaml.safe_load(MULTI.read_text())
    graph['nodes'].append(GYM)
    for node in graph['nodes']:
        if node['name'] in ('replay', 'policy'):
            node['parameters']['robot_ids'].append('reacher0')
    config = tmp_path / 'graph.yaml'
    config.write_text(yaml.safe_dump(graph))
    run_dir = tmp_path / 'run'
    run = Run(['--config', str(config), '--run-dir', str(run_dir), '--no-stop-at-success',
               '--status-every-s', '2', '--set', 'learner.sac.learning_starts=80',
               '--set', 'learner.publish_every_s=1.0'], tmp_path / 'train.log')
    try:
        assert wait_for(lambda: run.text().count(' active') >= 5, 60), run.text()
        assert wait_for(lambda: every_robot_acted_on_learned_weights(run_dir), 60), run.text()
    finally:
        code = run.terminate()
    assert code == 130, run.text()
    assert processes_of(run_dir) == [], 'processes left behind'
    summary = json.loads((run_dir / 'summary.json').read_text())
    # Every action had its robot's length and bounds. (An answer that arrives after its step
    # was given up on is 'stale': timing, not shape, and possible on a loaded machine.)
    for log in (run_dir / 'logs').glob('*.driver.log'):
        exit_line = log.read_text().split(' rejected: ', 1)[1].splitlines()[0]
        rejected = json.loads(exit_line.split(' actions lost: ')[0])
        assert set(rejected) <= {'stale'}, (log.name, rejected)
    assert set(summary['exit_codes'].values()) == {0}, summary['exit_codes']

    data = rows(run_dir)
    keys = [e['key'] for e in data['space']['embodiments']]
    assert keys == ['mujoco_panda7/23/7', 'gym_Reacher_v5/10/2', 'mujoco_ur5e6/21/6']
    assert data['action'].shape[1] == 7
    for code, name in enumerate(data['names']):
        mine = data['robot_id'] == code
        assert len(np.unique(data['embodiment'][mine])) == 1
        used = np.abs(data['action'][mine]).max(axis=0) > 0
        expected = [True] * ACTION_DIMS[name] + [False] * (7 - ACTION_DIMS[name])
        assert used.tolist() == expected, name
    reacher = data['robot_id'] == data['names'].index('reacher0')
    assert np.all(data['reward'][reacher] < 0)  # Reacher's own reward, carried by its driver
