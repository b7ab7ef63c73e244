"""The learner with ranks: 2, started as the launcher starts it (torchrun under the
Supervisor, rank 0 the ROS node, rank 1 without ROS, gloo on the CPU): a SIGKILLed rank
restarts the whole group, which resumes from its checkpoint; the node stays one process
for the Supervisor, and every process is gone after stop_all."""
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from ros_env import executable
from store_rows import store_record

from realrl_bringup.graph import NodeSpec
from realrl_bringup.supervisor import Supervisor, ros_args
from realrl_common.config import build_config
from realrl_learner.node_config import LearnerNodeConfig, launch_command
from realrl_replay.transition_schema import transition_schema
from realrl_replay.writer import ReplayWriter

DESC = {'robot_id': 'arm0', 'state_dim': 4, 'action_dim': 2, 'action_low': [-2.0, 0.0],
        'action_high': [2.0, 1.0], 'cameras': [], 'image_size': [0, 0]}


def fill(writer, n: int) -> None:
    """Append and commit n transitions of random numbers."""
    rng = np.random.default_rng(0)
    writer.append([store_record(writer, {
        'robot_id': 'arm0', 'seq': 1 + i, 'obs/state': rng.normal(size=4).astype(np.float32),
        'next_obs/state': rng.normal(size=4).astype(np.float32),
        'action': np.array([rng.uniform(-2, 2), rng.uniform(0, 1)], np.float32),
        'reward': np.float32(rng.normal()), 'terminated': False, 'truncated': False,
        'episode_id': 0, 'step': i}) for i in range(n)])
    writer.commit()


def children(pid: int) -> set[int]:
    """Live child processes of pid."""
    out = set()
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / 'stat').read_text().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != 'Z':
                out.add(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except OSError:
        return False
    return fields[0] != 'Z'


def rank_of(pid: int) -> int:
    """The RANK torchrun gave the process."""
    env = Path(f'/proc/{pid}/environ').read_bytes().split(b'\0')
    return int(next(v for v in env if v.startswith(b'RANK='))[5:])


def wait_for(cond, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f'timed out waiting for {what}')


def latest(ckpt: Path, key: str) -> int:
    """The updates ('updates') or weights version ('version') of the newest checkpoint."""
    try:
        state = torch.load(ckpt / 'latest.pt', weights_only=True)
    except (OSError, RuntimeError, EOFError):
        return 0
    return int(state['algorithm']['updates'] if key == 'updates' else state['version'])


def test_a_killed_rank_restarts_the_group(tmp_path, ros_domain):
    exe = executable('realrl_learner', 'learner_node')
    writer = ReplayWriter.create(tmp_path / 'store', transition_schema(DESC),
                                 {'robots': {'arm0': DESC}})
    fill(writer, 50)
    writer.close()
    ckpt = tmp_path / 'ckpt'
    params = {'store_path': str(tmp_path / 'store'), 'checkpoint_dir': str(ckpt), 'ranks': 2,
              'rank_restarts': 2, 'checkpoint_every_s': 0.3, 'nice': 0,
              'publish_every_s': 0.2,
              'algorithm': {'type': 'sac', 'batch_size': 4, 'learning_starts': 0,
                            'updates_per_step': 1000.0}}
    cfg = build_config(LearnerNodeConfig, params)
    spec = NodeSpec(name='learner', package='realrl_learner', executable='learner_node')
    (tmp_path / 'learner.yaml').write_text(
        yaml.safe_dump({'/learner': {'ros__parameters': params}}))
    command = launch_command(cfg, [exe] + ros_args(spec, tmp_path / 'learner.yaml'))
    assert command[1:3] == ['-m', 'torch.distributed.run'] and '--nproc-per-node=2' in command
    sup = Supervisor(tmp_path / 'logs', env=dict(os.environ, OMP_NUM_THREADS='1'))
    m = sup.add(spec, command)
    seen: set[int] = set()
    try:
        sup.start(m)
        agent = m.proc.pid
        first = wait_for(lambda: len(children(agent)) == 2 and children(agent), 60,
                         'the two ranks')
        seen |= first
        before = wait_for(lambda: latest(ckpt, 'updates'), 60, 'a checkpoint of the two ranks')
        victim = next(p for p in first if rank_of(p) == 1)  # the rank without ROS
        os.kill(victim, signal.SIGKILL)
        second = wait_for(lambda: len(children(agent) - first) == 2 and children(agent), 60,
                          'the group restarted')
        seen |= second
        assert not any(alive(p) for p in first)  # the whole group went, not the dead rank only
        wait_for(lambda: latest(ckpt, 'updates') > before + 5, 60,
                 'training resumed after the restart')
        # rank 0's publisher thread handed out versions (publish_every_s 0.2)
        wait_for(lambda: latest(ckpt, 'version') >= 2, 30, 'weights versions published')
        assert sup.poll() == [] and m.running and m.starts == 1  # one node all along
    finally:
        sup.stop_all(grace_s=5.0)
    assert not alive(agent) and not any(alive(p) for p in seen)
    log = m.log_path.read_text(errors='replace')
    assert 'resumed from checkpoint' in log
