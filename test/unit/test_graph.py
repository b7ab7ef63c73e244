"""The graph description is checked whole before anything starts, without ROS.

What each node is comes from the packages' own entry points (``realrl.nodes``), so these
tests need the built workspace's metadata (scripts/setup.sh) but never rclpy.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from realrl_bringup.cli import main as realrl_main
from realrl_bringup.graph import build_graph, load_graph, read_description
from realrl_common.config import ConfigError
from realrl_common.plugins import NODES, ROBOTS, node_kinds, registered

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / 'config' / 'reach_sim.yaml'


def test_demo_graph_is_valid_and_substitutes_the_run_dir():
    graph = load_graph(DEMO, {'run_dir': '/tmp/r'})
    assert [n.fqn for n in graph.nodes] == ['/replay', '/learner', '/reward', '/policy',
                                            '/arm0/driver']
    assert graph.robot_ids() == ['arm0']
    replay = graph.nodes[0]
    assert replay.parameters['store_path'] == '/tmp/r/replay'
    assert [n.lifecycle for n in graph.nodes] == [False] * 4 + [True]


@pytest.mark.parametrize('override, message', [
    ('policy.robot_ids=[arm1]', r"robot_ids names 'arm1', but no driver has that robot_id"),
    ('learner.sac.batchsize=3',
     r"unknown key 'sac.batchsize'; did you mean 'sac.batch_size'|unknown key 'sac.batchsize'"),
    ('driver.control_hz=fast', r'/arm0/driver parameters: control_hz: expected a number'),
    ('driver.control_hz=33.0', r'control_hz'),
    ('reward.reach.mode=dens', r"mode must be one of \['dense', 'sparse'\]"),
    ('stop.window=0', r'stop.window must be > 0'),
    ('nobody.x=1', r"no node named 'nobody'"),
    ('policy.device=gpu', r"device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    ('host.cpu_wake_latency_us=-1', r'host: cpu_wake_latency_us must be >= 0 microseconds'),
    ('host.cpu_wake_latency=0', r"unknown key 'host.cpu_wake_latency'; did you mean "
                                r"'host.cpu_wake_latency_us'"),
    ('driver.arm.model_path=/nope.xml', r"model_path '/nope.xml' is not a file"),
])
def test_bad_parameters_are_named_before_anything_starts(override, message):
    with pytest.raises(ConfigError, match=message):
        load_graph(DEMO, {'run_dir': '/tmp/r'}, [override])


def test_set_reaches_every_node_of_a_name_or_one_by_namespace():
    multi = ROOT / 'config' / 'multi_arm_sim.yaml'
    graph = load_graph(multi, {'run_dir': '/r'}, ['driver.episode_max_steps=7'])
    drivers = [n for n in graph.nodes if n.name == 'driver']
    assert len(drivers) == 4 and {n.parameters['episode_max_steps'] for n in drivers} == {7}
    graph = load_graph(multi, {'run_dir': '/r'}, ['ur5e1/driver.episode_max_steps=9'])
    steps = {n.fqn: n.parameters['episode_max_steps'] for n in graph.nodes if n.name == 'driver'}
    assert steps.pop('/ur5e1/driver') == 9 and set(steps.values()) == {50}
    with pytest.raises(ConfigError,
                       match=r"no node named 'arm7/driver'; nodes: \[.*'ur5e1/driver'"):
        load_graph(multi, {'run_dir': '/r'}, ['arm7/driver.seed=1'])


def test_the_host_section_is_the_machines_setting_and_set_overrides_it():
    assert load_graph(DEMO, {'run_dir': '/r'}).host.cpu_wake_latency_us is None
    split = ROOT / 'config' / 'reach_cloud_edge.yaml'
    assert load_graph(split, {'run_dir': '/r'}).host.cpu_wake_latency_us == 0
    graph = load_graph(split, {'run_dir': '/r'}, ['host.cpu_wake_latency_us=null'])
    assert graph.for_site('lab_a').host.cpu_wake_latency_us is None
    assert load_graph(DEMO, {'run_dir': '/r'},
                      ['host.cpu_wake_latency_us=25']).host.cpu_wake_latency_us == 25


def test_structural_errors(tmp_path):
    raw = yaml.safe_load(DEMO.read_text())
    raw['nodes'][4]['namespace'] = 'arm9'
    bad = tmp_path / 'bad.yaml'
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match='set namespace: arm0'):
        load_graph(bad, {'run_dir': '/r'})
    raw = yaml.safe_load(DEMO.read_text())
    raw['nodes'][0]['executable'] = 'replay_nod'
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"node /replay: unknown executable "
                                          r"realrl_replay/replay_nod; known: \[.*"
                                          r"'realrl_replay/replay_node'"):
        load_graph(bad, {'run_dir': '/r'})
    raw['nodes'][0]['restart'] = 'sometimes'
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"restart must be one of \['never', 'on_failure'\]"):
        load_graph(bad, {'run_dir': '/r'})
    bad.write_text('nodes: [1, 2')
    with pytest.raises(ConfigError, match='not valid YAML'):
        load_graph(bad)
    with pytest.raises(ConfigError, match='does not exist'):
        load_graph(tmp_path / 'missing.yaml')
    raw = yaml.safe_load(DEMO.read_text())
    raw['nodes'][0]['parameters']['store_path'] = '${rundir}/replay'
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r'unknown variable \$\{rundir\}'):
        load_graph(bad, {'run_dir': '/r'})


def test_cli_refuses_bad_input_with_exit_2_and_starts_nothing(tmp_path, capsys):
    run_dir = tmp_path / 'run'
    code = realrl_main(['train', '--config', str(DEMO), '--run-dir', str(run_dir),
                        '--set', 'learner.sac.gamma=1.5'])
    assert code == 2
    assert 'gamma must be in [0, 1)' in capsys.readouterr().err
    assert not run_dir.exists()  # nothing was created or started
    (run_dir).mkdir()
    (run_dir / 'x').write_text('')
    assert realrl_main(['train', '--run-dir', str(run_dir)]) == 2
    assert 'use --resume' in capsys.readouterr().err
    assert realrl_main(['train', '--resume', str(tmp_path)]) == 2
    assert 'no graph.yaml there' in capsys.readouterr().err


MULTI = ROOT / 'config' / 'multi_arm_sim.yaml'


def test_multi_robot_graph_has_two_arm_kinds_and_one_of_each_other_node():
    graph = load_graph(MULTI, {'run_dir': '/tmp/r'})
    assert graph.robot_ids() == ['panda0', 'panda1', 'ur5e0', 'ur5e1']
    models = {n.namespace: n.parameters['arm']['model'] for n in graph.drivers}
    assert models == {'panda0': 'panda7', 'panda1': 'panda7', 'ur5e0': 'ur5e6', 'ur5e1': 'ur5e6'}
    others = [n.name for n in graph.nodes if n not in graph.drivers]
    assert others == ['replay', 'learner', 'reward', 'policy']
    with pytest.raises(ConfigError, match=r"panda0/driver parameters: arm: model 'ur10' is not "
                                          r'a known arm; known'):
        load_graph(MULTI, {'run_dir': '/tmp/r'}, ['driver.arm.model=ur10'])


def test_a_reward_node_may_not_label_a_robot_that_scores_itself(tmp_path):
    raw = yaml.safe_load(MULTI.read_text())
    raw['nodes'].append({'name': 'driver', 'namespace': 'pend0', 'package': 'realrl_driver',
                         'executable': 'gym_driver', 'lifecycle': True,
                         'parameters': {'robot_id': 'pend0', 'env': {'env_id': 'Pendulum-v1'},
                                        'realtime_priority': 20}})  # above replay's 5
    for node in raw['nodes']:
        if node['name'] in ('replay', 'policy'):
            node['parameters']['robot_ids'].append('pend0')
    path = tmp_path / 'g.yaml'
    path.write_text(yaml.safe_dump(raw))
    assert 'pend0' in load_graph(path, {'run_dir': '/tmp/r'}).robot_ids()
    with pytest.raises(ConfigError, match=r"robot_ids names \['pend0'\], whose driver labels its "
                                          r'own steps \(reward_source: env\)'):
        load_graph(path, {'run_dir': '/tmp/r'}, ['reward.robot_ids=[panda0, pend0]'])


def test_check_refuses_a_reward_that_cannot_label_its_robot(tmp_path, capsys):
    """A ros2_control robot's state has joint slices only; the reach reward reads ee_pos and
    target_pos. The run would wait for labels forever, so `realrl check` refuses the graph."""
    raw = yaml.safe_load(DEMO.read_text())
    raw['nodes'].append({'name': 'driver', 'namespace': 'arm1', 'package': 'realrl_driver',
                         'executable': 'ros2_control_driver', 'lifecycle': True,
                         'parameters': {'robot_id': 'arm1', 'ros2_control': {
                             'joints': ['j1', 'j2'], 'lower_limits': [-1.0, -1.0],
                             'upper_limits': [1.0, 1.0]}}})
    for node in raw['nodes']:
        if node['name'] in ('replay', 'policy', 'reward'):
            node['parameters']['robot_ids'] = ['arm0', 'arm1']
    path = tmp_path / 'g.yaml'
    path.write_text(yaml.safe_dump(raw))
    assert realrl_main(['check', '--config', str(path)]) == 2
    err = capsys.readouterr().err
    assert ("node /reward parameters: robot 'arm1' cannot be labelled: the reward reads "
            "reach.ee_key 'ee_pos', reach.target_key 'target_pos', but the state of "
            "/arm1/driver has only ['joint_pos', 'joint_vel', 'joint_target']") in err
    assert 'would wait for reward labels forever' in err
    # Pointed at slices the robot has, the same graph passes (the sim arm is not checked:
    # only its built model knows its slices).
    assert realrl_main(['check', '--config', str(path), '--set',
                        'reward.reach.ee_key=joint_pos', '--set',
                        'reward.reach.target_key=joint_target']) == 0


def test_reward_check_compares_declared_slices_and_skips_robots_only_built_ones_know():
    from realrl_bringup.graph_checks import check_rewards_can_label
    from realrl_common.config import build_config
    from realrl_driver.robots.mujoco_arm.config import MujocoArmDriverConfig
    from realrl_driver.robots.ros2_control.config import Ros2ControlDriverConfig
    from realrl_driver.robots.ur_rtde.config import URDriverConfig
    from realrl_reward.node_config import RewardNodeConfig
    arm = build_config(Ros2ControlDriverConfig, {'robot_id': 'arm1', 'ros2_control': {
        'joints': ['a'], 'lower_limits': [-1.0], 'upper_limits': [1.0],
        'command_interface': 'velocity'}})
    assert arm.state_names() == ('joint_pos', 'joint_vel', 'joint_vel_cmd')
    ur = build_config(URDriverConfig, {'robot_id': 'ur0', 'ur': {'backend': 'sim'}})
    assert ur.state_names() == ('joint_pos', 'joint_vel', 'tcp_pose')
    reward = build_config(RewardNodeConfig, {'robot_ids': ['ur0', 'sim0'], 'reach': {
        'ee_key': 'tcp_pose', 'target_key': 'joint_pos'}})
    sim = build_config(MujocoArmDriverConfig, {'robot_id': 'sim0'})
    assert sim.state_names() is None  # the MuJoCo model decides its slices
    configs = {'/arm1/driver': arm, '/ur0/driver': ur, '/sim0/driver': sim, '/reward': reward}
    check_rewards_can_label(configs)  # ur0 has both slices; sim0's are unknown until built
    configs['/reward'] = build_config(RewardNodeConfig, {'robot_ids': ['arm1']})
    with pytest.raises(ConfigError, match=r"robot 'arm1' cannot be labelled: the reward reads "
                                          r"reach.ee_key 'ee_pos', reach.target_key "
                                          r"'target_pos', but the state of /arm1/driver has "
                                          r"only \['joint_pos', 'joint_vel', 'joint_vel_cmd'\]"):
        check_rewards_can_label(configs)


# Makes every import of ROS fail in the process it is loaded into (as sitecustomize).
NO_ROS = """
import sys

class _NoRos:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError(f'{{name}} is blocked: validating a graph must not load ROS')
        return None

sys.meta_path.insert(0, _NoRos())
"""
ROS_MODULES = ('rclpy', 'realrl_interfaces', 'sensor_msgs', 'std_msgs', 'std_srvs',
               'lifecycle_msgs', 'rosidl_runtime_py', 'ament_index_python')


def without_ros(tmp_path) -> dict:
    """An environment whose Python cannot import rclpy or any ROS message."""
    (tmp_path / 'sitecustomize.py').write_text(NO_ROS.format(blocked=ROS_MODULES))
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), os.environ.get('PYTHONPATH', '')]))


def test_check_validates_graphs_where_rclpy_cannot_be_imported(tmp_path):
    env = without_ros(tmp_path)
    probe = subprocess.run([sys.executable, '-c', 'import rclpy'], env=env,
                           capture_output=True, text=True)
    assert probe.returncode != 0 and 'rclpy is blocked' in probe.stderr
    for config, nodes in ((DEMO, 5), (MULTI, 8)):
        out = subprocess.run([sys.executable, '-m', 'realrl_bringup.cli', 'check', '--config',
                              str(config), '--set', 'policy.deterministic=true'],
                             env=env, capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        assert f'{config}: ok ({nodes} nodes' in out.stdout
    bad = subprocess.run([sys.executable, '-m', 'realrl_bringup.cli', 'check', '--config',
                          str(DEMO), '--set', 'learner.sac.batchsize=3'],
                         env=env, capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "unknown key 'sac.batchsize'" in bad.stderr


def test_every_registered_node_and_robot_kind_loads_without_ros(tmp_path):
    code = ('from realrl_common.plugins import NODES, ROBOTS, registered\n'
            'for group in (NODES, ROBOTS):\n'
            '    for ep in registered(group):\n'
            '        print(group, ep.name, type(ep.load()).__name__)\n')
    out = subprocess.run([sys.executable, '-c', code], env=without_ros(tmp_path),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = set(out.stdout.splitlines())
    assert {f'{NODES} {ep.name} NodeKind' for ep in registered(NODES)} <= lines
    assert {f'{ROBOTS} {ep.name} RobotKind' for ep in registered(ROBOTS)} <= lines
    assert len(lines) >= 16  # realrl's own: 12 nodes, 4 robot kinds


def test_roles_come_from_the_registry_not_from_names():
    kinds = {key: ep.load() for key, ep in node_kinds().items()}
    drivers = sorted(e for (p, e), k in kinds.items() if k.role == 'driver')
    assert drivers == ['gym_driver', 'mujoco_arm_driver', 'mujoco_peg_driver',
                       'ros2_control_driver', 'ur_rtde_driver']
    assert kinds[('realrl_driver', 'camera_node')].role == 'camera'
    assert kinds[('realrl_sim_peers', 'ros2_control_peer')].role == 'peer'
    assert kinds[('realrl_hardware', 'hardware_manager')].role == 'hardware'
    # a driver is what its package registered, whatever its executable is called
    graph = load_graph(DEMO, {'run_dir': '/tmp/r'})
    assert [graph.role(n) for n in graph.nodes] == ['replay', 'learner', 'reward', 'policy',
                                                     'driver']


def test_a_run_is_built_from_one_validated_graph_and_resumes_from_its_snapshot(tmp_path):
    from realrl_bringup.run import Run
    run_dir = tmp_path / 'run'
    run = Run.new(DEMO, run_dir, ['learner.sac.batch_size=64', 'stop.window=7'])
    assert not run_dir.exists()  # nothing is written before execute/prepare
    commands = run.prepare()
    snapshot = yaml.safe_load((run_dir / 'graph.yaml').read_text())
    learner = next(n for n in snapshot['nodes'] if n['name'] == 'learner')
    assert learner['parameters']['sac']['batch_size'] == 64 and snapshot['stop']['window'] == 7
    assert learner['parameters']['store_path'] == '${run_dir}/replay'  # resumable elsewhere
    params = yaml.safe_load((run_dir / 'params' / 'learner.yaml').read_text())
    assert params['/learner']['ros__parameters']['store_path'] == f'{run_dir.resolve()}/replay'
    assert commands['/arm0/driver'][0].endswith('/lib/realrl_driver/mujoco_arm_driver')
    assert run.graph.configs['/learner'].sac.batch_size == 64

    moved = tmp_path / 'moved'
    run_dir.rename(moved)
    resumed = Run.resume(moved, ['stop.window=5'])
    assert resumed.graph.stop.window == 5
    assert resumed.graph.configs['/learner'].sac.batch_size == 64
    assert resumed.graph.configs['/replay'].store_path == f'{moved.resolve()}/replay'


def test_the_recorder_is_a_node_of_a_graph_checked_like_the_others(tmp_path):
    from realrl_bringup.recording.record_config import RecordConfig, unused_path
    description = read_description(DEMO)
    recorder = {'name': 'recorder', 'package': 'realrl_bringup', 'executable': 'record_node',
                'parameters': {'out': '${run_dir}/episodes.mcap', 'topics': ['/arm0/episode']}}
    graph = build_graph({**description, 'nodes': [*description['nodes'], recorder]},
                        {'run_dir': str(tmp_path)})
    assert graph.role(graph.nodes[-1]) == 'recorder'
    assert graph.configs['/recorder'] == RecordConfig(out=f'{tmp_path}/episodes.mcap',
                                                      topics=('/arm0/episode',))
    for params, error in (({}, "missing required key 'out'"),
                          ({'out': 'x.bag'}, 'out must name a .mcap file'),
                          ({'out': 'x.mcap', 'topics': ['arm0/episode']}, 'must be absolute')):
        with pytest.raises(ConfigError, match=rf'node /recorder parameters: .*{error}'):
            build_graph({**description, 'nodes': [*description['nodes'],
                                                   {**recorder, 'parameters': params}]},
                        {'run_dir': str(tmp_path)})
    out = tmp_path / 'episodes.mcap'
    assert unused_path(out) == out
    out.write_bytes(b'a recording')  # a restarted recorder or a resumed run never overwrites
    (tmp_path / 'episodes-2.mcap').write_bytes(b'another')
    assert unused_path(out) == tmp_path / 'episodes-3.mcap'
