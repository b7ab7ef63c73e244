"""The peg-insertion robot in a graph: chosen by its driver executable, labelled by itself or
by a reward node whose type can label it (realrl_bringup.graph with mujoco_peg)."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from realrl_bringup.graph import load_graph
from realrl_common.config import ConfigError

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'reach_sim.yaml'


def peg_graph(tmp_path, reward: dict | None, reward_source: str = 'env') -> Path:
    """The demo graph with the peg-insertion driver, and the reward node's parameters
    replaced by `reward` (None: no reward node)."""
    raw = yaml.safe_load(DEMO.read_text())
    nodes = []
    for node in raw['nodes']:
        if node['name'] == 'driver':
            node['executable'] = 'mujoco_peg_driver'
            node['parameters'] = {'robot_id': 'arm0', 'control_hz': 10.0,
                                  'reward_source': reward_source}
        if node['name'] == 'reward':
            if reward is None:
                continue
            node['parameters'] = {'robot_ids': ['arm0'], **reward}
        nodes.append(node)
    raw['nodes'] = nodes
    path = tmp_path / 'peg.yaml'
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_peg_robot_labels_itself_or_is_labelled_by_the_classifier(tmp_path):
    graph = load_graph(peg_graph(tmp_path, None), {'run_dir': '/tmp/r'})
    assert graph.robot_ids() == ['arm0']
    classifier = {'type': 'classifier', 'params': {'model_path': '/tmp/r/classifier.pt'}}
    load_graph(peg_graph(tmp_path, classifier, 'node'), {'run_dir': '/tmp/r'})
    with pytest.raises(ConfigError, match='labels its own steps'):
        load_graph(peg_graph(tmp_path, classifier, 'env'), {'run_dir': '/tmp/r'})


def test_a_reach_reward_cannot_label_the_peg_robot(tmp_path):
    with pytest.raises(ConfigError, match=r"robot 'arm0' cannot be labelled: the reward reads "
                                          r"reach.target_key 'target_pos', but the state of "
                                          r"/arm0/driver has only \['joint_pos', 'joint_vel', "
                                          r"'ee_pos', 'ee_force'\]"):
        load_graph(peg_graph(tmp_path, {'type': 'reach'}, 'node'), {'run_dir': '/tmp/r'})


def test_reward_types_load_without_torch():
    code = ('import sys\n'
            'from realrl_common.plugins import REWARDS, registered\n'
            'kinds = {ep.name: type(ep.load()).__name__ for ep in registered(REWARDS)}\n'
            'print(kinds, "torch" in sys.modules)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'classifier': 'RewardKind', 'reach': 'RewardKind'} False"
