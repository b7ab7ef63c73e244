"""A package outside realrl adds a robot kind and a policy type through entry points only.

test/fixtures/realrl_example_plugin is copied to a temporary folder and built by colcon
(``--symlink-install``, as scripts/setup.sh builds realrl) into an install base of its own.
With that overlay sourced over realrl's workspace, `realrl check` knows its driver, and
`realrl train` runs it: the point-mass driver comes up over DDS and its steps reach the
store, the learner trains the plug-in's 'linear' actor type, and the policy rebuilds that type
from the weights blob's header; the run is interrupted once it has. Nothing of realrl's code
names the plug-in.
"""
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import yaml
from ros_env import ROOT, next_domain_id, require_workspace, wait_for

LINEAR = "actor type 'linear' (LinearGaussianActor)"
FIXTURE = ROOT / 'test' / 'fixtures' / 'realrl_example_plugin'
GRAPH = {
    'name': 'point_mass',
    'stop': {'success_rate': 0.9, 'window': 10, 'max_wall_s': 900},
    'nodes': [
        {'name': 'replay', 'package': 'realrl_replay', 'executable': 'replay_node',
         'parameters': {'store_path': '${run_dir}/replay', 'robot_ids': ['pm0']}},
        {'name': 'learner', 'package': 'realrl_learner', 'executable': 'learner_node',
         'parameters': {'store_path': '${run_dir}/replay',
                        'checkpoint_dir': '${run_dir}/checkpoints', 'publish_every_s': 0.5,
                        'sac': {'learning_starts': 20, 'batch_size': 16,
                                'actor': {'type': 'linear'}}}},
        {'name': 'policy', 'package': 'realrl_policy', 'executable': 'policy_node',
         'parameters': {'robot_ids': ['pm0']}},
        {'name': 'driver', 'namespace': 'pm0', 'package': 'realrl_example_plugin',
         'executable': 'point_mass_driver', 'lifecycle': True,
         'parameters': {'robot_id': 'pm0', 'control_hz': 20.0, 'episode_max_steps': 20}},
    ],
}


def in_overlay(overlay: Path, command: str, cwd: Path, timeout: float):
    """Command in bash with realrl's environment and the plug-in's overlay sourced."""
    script = (f'source {ROOT}/scripts/env.sh && source {overlay}/setup.bash && {command}')
    return subprocess.run(['bash', '-c', script], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, ROS_DOMAIN_ID=str(
                              next_domain_id()), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST'))


def test_a_plugin_package_registers_a_robot_and_a_policy_type_and_runs(tmp_path):
    require_workspace()
    src = tmp_path / 'src' / FIXTURE.name
    shutil.copytree(FIXTURE, src)
    build = subprocess.run(
        ['bash', '-c', f'source {ROOT}/scripts/env.sh && colcon --log-base log build '
                       '--symlink-install --base-paths src --build-base build '
                       '--install-base install --event-handlers console_cohesion-'],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    overlay = tmp_path / 'install'
    graph = tmp_path / 'graph.yaml'
    graph.write_text(yaml.safe_dump(GRAPH, sort_keys=False))

    # Without the overlay realrl does not know the driver, and says which ones it knows.
    unknown = subprocess.run(['bash', '-c', f'source {ROOT}/scripts/env.sh && realrl check '
                                            f'--config {graph}'],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2
    assert ('unknown executable realrl_example_plugin/point_mass_driver; known: '
            in unknown.stderr) and 'realrl_driver/mujoco_arm_driver' in unknown.stderr

    check = in_overlay(overlay, f'realrl check --config {graph}', ROOT, 60)
    assert check.returncode == 0, check.stderr
    assert "ok (4 nodes, robots ['pm0'])" in check.stdout

    # `realrl train` until the policy acts with the plug-in's actor type, then Ctrl-C.
    run_dir = tmp_path / 'run'
    policy_log = run_dir / 'logs' / 'policy.log'
    train = subprocess.Popen(
        ['bash', '-c', f'source {ROOT}/scripts/env.sh && source {overlay}/setup.bash && '
                       f'exec realrl train --config {graph} --run-dir {run_dir} '
                       f'--max-wall-s 90 --no-stop-at-success'],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env=dict(os.environ, ROS_DOMAIN_ID=str(next_domain_id()),
                                         ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST'))
    try:
        acted = wait_for(lambda: policy_log.exists() and LINEAR in policy_log.read_text(), 90)
    finally:
        os.killpg(train.pid, signal.SIGINT)
        out = train.communicate(timeout=60)[0]
    assert acted, out
    assert train.returncode == 130, out
    summary = json.loads((run_dir / 'summary.json').read_text())
    assert summary['outcome'] == 'interrupted', out
    assert summary['steps'] > 0 and summary['stored'] > 0, summary  # durable in the store
    assert summary['policy_version'] >= 1, summary  # the learner's 'linear' weights arrived
    driver_log = (run_dir / 'logs' / 'pm0.driver.log').read_text()
    assert "configured point_mass robot 'pm0'" in driver_log
    assert 'refused weights' not in policy_log.read_text()
