"""`realrl eval`: a checkpoint's actor, frozen, runs the run's robots through DDS.

The checkpoint is written by the Trainer itself on a tiny store of the arm's space (cheaper
than a training run); the evaluation then starts the run's graph without learner and replay.
"""
import json
import os
import subprocess

import numpy as np
import pytest
import torch
import yaml
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from ros_env import ROOT, isolate, next_domain_id, require_workspace
from store_rows import store_record

from realrl_bringup.evaluate import eval_description, evaluate, locate, summarize
from realrl_bringup.graph import read_description
from realrl_common.config import ConfigError
from realrl_driver.robots.mujoco_arm.config import MujocoArmDriverConfig
from realrl_driver.robots.mujoco_arm.robot import make_arm
from realrl_learner.sac import SACConfig
from realrl_learner.trainer import Trainer, TrainerConfig
from realrl_replay.reader import ReplayReader
from realrl_replay.transition_schema import transition_schema
from realrl_replay.writer import ReplayWriter

DEMO = ROOT / 'config' / 'reach_sim.yaml'


def arm_description() -> dict:
    """arm0's description as its driver publishes it (float32 bounds, as on the wire)."""
    robot = make_arm(MujocoArmDriverConfig())
    f32 = lambda a: [float(x) for x in np.asarray(a, np.float32)]  # noqa: E731
    return {'robot_id': 'arm0', 'kind': 'mujoco_arm', 'state_dim': int(robot.state_dim),
            'state_layout': {n: [a, b] for n, (a, b) in robot.observation_layout.items()},
            'action_dim': int(robot.action_dim), 'action_low': f32(robot.action_low),
            'action_high': f32(robot.action_high), 'cameras': [], 'image_size': [0, 0]}


def write_checkpoint(run_dir) -> None:
    """A few SAC updates on a store of random arm transitions, saved by the Trainer."""
    desc, rng = arm_description(), np.random.default_rng(0)
    writer = ReplayWriter.create(run_dir / 'replay', transition_schema(desc),
                                 {'robots': {'arm0': desc}})
    n, s, a = 40, desc['state_dim'], desc['action_dim']
    writer.append([store_record(writer, {
        'robot_id': 'arm0', 'seq': i + 1, 'obs/state': rng.normal(size=s).astype(np.float32),
        'next_obs/state': rng.normal(size=s).astype(np.float32),
        'action': rng.uniform(-1, 1, a).astype(np.float32), 'reward': np.float32(-1),
        'terminated': False, 'truncated': False, 'episode_id': 0, 'step': i})
        for i in range(n)])
    writer.commit()
    cfg = TrainerConfig(sac=SACConfig(batch_size=8, learning_starts=36, updates_per_step=1.0),
                        refresh_every_s=0.0)
    trainer = Trainer(cfg, ReplayReader(run_dir / 'replay'), run_dir / 'checkpoints')
    while trainer.step():
        pass
    trainer.next_weights(0.0)
    trainer.save_checkpoint()
    trainer.close()
    writer.close()


def test_eval_graph_drops_learner_and_replay_and_freezes_the_policy(tmp_path):
    ckpt = tmp_path / 'c.pt'
    ckpt.write_bytes(b'')
    desc = eval_description(read_description(DEMO), ckpt, True, 100)
    names = [n['name'] for n in desc['nodes']]
    assert names == ['reward', 'policy', 'driver']
    policy, driver = desc['nodes'][1]['parameters'], desc['nodes'][2]['parameters']
    assert policy['weights_file'] == str(ckpt.resolve()) and policy['deterministic']
    assert driver['replay_wait_s'] == 0.0 and driver['seed'] == 100
    with pytest.raises(ConfigError, match='no checkpoint'):
        locate(tmp_path)
    figures = summarize([{'robot_id': 'a', 'steps': 10, 'return': -1.0, 'success': True},
                         {'robot_id': 'a', 'steps': 50, 'return': -5.0, 'success': False}],
                        {'a': 20.0}, 5)
    assert figures == {'episodes': 2, 'success_rate': 0.5, 'mean_return': -3.0,
                       'time_to_success_steps': 10.0, 'time_to_success_s': 0.5}


RECORDED = ('/arm0/episode', '/arm0/joint_states')


def test_realrl_eval_runs_three_episodes_of_a_checkpoint_and_its_recorder_writes_them(tmp_path):
    """Also the recorder as a node of the graph (role recorder): its MCAP opens in an
    independent reader (mcap-ros2-support) and holds the episodes the run logged."""
    require_workspace()
    isolate(next_domain_id())
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    write_checkpoint(run_dir)
    description = read_description(DEMO, ['driver.episode_max_steps=5',
                                           'driver.control_hz=50.0'])
    description['nodes'].append({'name': 'recorder', 'package': 'realrl_bringup',
                                 'executable': 'record_node',
                                 'parameters': {'out': '${run_dir}/episodes.mcap',
                                                'topics': list(RECORDED)}})
    (run_dir / 'graph.yaml').write_text(yaml.safe_dump(description, sort_keys=False))
    rows_before = ReplayReader(run_dir / 'replay').count
    out = subprocess.run([str(ROOT / '.venv/bin/realrl'), 'eval', str(run_dir), '--episodes',
                          '3', '--deterministic', '--max-wall-s', '60'],
                         capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env=os.environ.copy())
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    written = sorted(run_dir.glob('eval-*.json'))
    assert len(written) == 1
    figures = json.loads(written[0].read_text())
    assert figures['episodes'] == 3 and figures['deterministic']
    assert 0.0 <= figures['success_rate'] <= 1.0
    episodes = [json.loads(line) for line in
                next(run_dir.glob('eval-*/metrics/episodes.jsonl')).read_text().splitlines()]
    # the checkpoint's version served, frozen; episodes of the drivers' eval seeds
    assert {e['policy_version'] for e in episodes[:3]} == {1}
    assert all(e['steps'] <= 5 for e in episodes)
    assert ReplayReader(run_dir / 'replay').count == rows_before  # nothing stored
    assert json.loads(out.stdout.splitlines()[-2].removeprefix('realrl: '))['exit_codes'][
        '/recorder'] == 0
    with open(run_dir / 'episodes.mcap', 'rb') as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        channels = {c.topic: reader.get_summary().schemas[c.schema_id].name
                    for c in reader.get_summary().channels.values()}
        got = {t: [] for t in RECORDED}
        for _schema, channel, _message, decoded in reader.iter_decoded_messages():
            got[channel.topic].append(decoded)
    assert channels == {'/arm0/episode': 'realrl_interfaces/msg/EpisodeResult',
                        '/arm0/joint_states': 'sensor_msgs/msg/JointState'}
    logged = {e['episode_id']: e for e in episodes}
    assert got['/arm0/episode'], 'no episode recorded'
    for ep in got['/arm0/episode']:  # each recorded episode is one the run logged, as logged
        assert (ep.robot_id, ep.steps, ep.success) == (
            'arm0', logged[ep.episode_id]['steps'], logged[ep.episode_id]['success'])
        assert abs(ep.episode_return - logged[ep.episode_id]['return']) < 1e-4  # 5 places
    joints = got['/arm0/joint_states']  # the driver's visualization, at its viz_hz
    assert joints and all(len(j.name) == len(j.position) > 0 for j in joints)


def truncated_checkpoint(run_dir):
    """A real checkpoint of the Trainer, cut in half (as a copy or a disk that filled up
    leaves it)."""
    write_checkpoint(run_dir)
    ckpt = run_dir / 'checkpoints' / 'latest.pt'
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[:len(data) // 2])
    return ckpt


def test_realrl_eval_refuses_a_bad_checkpoint_before_starting_anything(tmp_path):
    require_workspace()
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    ckpt = truncated_checkpoint(run_dir)
    (run_dir / 'graph.yaml').write_text(yaml.safe_dump(read_description(DEMO)))
    out = subprocess.run([str(ROOT / '.venv/bin/realrl'), 'eval', str(run_dir), '--episodes',
                          '3', '--max-wall-s', '60'], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env=os.environ.copy())
    assert out.returncode == 2, out.stdout[-3000:] + out.stderr[-3000:]
    assert (f'realrl: weights_file {ckpt}: not a readable torch checkpoint (truncated, or '
            f'another format)') in out.stderr
    assert 'started' not in out.stdout and not list(run_dir.glob('eval-*'))  # nothing ran
    torch.save({'version': 3}, ckpt)  # a torch file, but no actor in it
    with pytest.raises(ConfigError, match=rf"weights_file {ckpt}: not a learner checkpoint"):
        evaluate(str(ckpt), 3, True)
    ckpt.unlink()
    with pytest.raises(ConfigError, match='no checkpoint'):
        evaluate(str(run_dir), 3, True)


def test_a_policy_given_a_bad_weights_file_stops_the_run_at_once(tmp_path):
    """Past the checks (the file went bad after them): the policy node exits on its
    configuration once, is not restarted, and the run ends naming it, not at its time limit."""
    require_workspace()
    isolate(next_domain_id())
    ckpt = truncated_checkpoint(tmp_path)
    description = read_description(DEMO, [f'policy.weights_file={ckpt}'])
    description['nodes'] = [n for n in description['nodes'] if n['name'] in ('policy', 'driver')]
    (tmp_path / 'graph.yaml').write_text(yaml.safe_dump(description))
    run_dir = tmp_path / 'run'
    out = subprocess.run([str(ROOT / '.venv/bin/realrl'), 'train', '--config',
                          str(tmp_path / 'graph.yaml'), '--run-dir', str(run_dir),
                          '--max-wall-s', '300'], capture_output=True, text=True, timeout=240,
                         cwd=ROOT, env=os.environ.copy())
    assert out.returncode == 2, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((run_dir / 'summary.json').read_text())
    assert summary['outcome'] == 'bad_config'
    assert (f'/policy cannot run with its configuration, so the run stops: policy: bad '
            f'configuration: weights_file {ckpt}: not a readable torch checkpoint') in out.stderr
    log = (run_dir / 'logs' / 'policy.log').read_text()
    assert log.count('bad configuration') == 1 and 'Traceback' not in log  # started once
