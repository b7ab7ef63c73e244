"""Data-parallel learner ranks as real processes on the CPU (gloo): two ranks train as one
process on the doubled batch, and a checkpoint of two ranks resumes onto one and onto three."""
import copy
import json
import multiprocessing
import shutil
import socket
import sys
import threading
import time

import data_parallel_rank
import numpy as np
import pytest
import torch
from test_trainer import DESC, fill

from realrl_learner.algorithms.bc import BC, BCConfig
from realrl_learner.publish_thread import PublishThread
from realrl_learner.sac import SACConfig
from realrl_learner.trainer import Trainer, TrainerConfig, sampler_rng_states
from realrl_policy.actors.vla_tiny import VLATinyConfig
from realrl_policy.weights_blob import pack_actor, unpack_actor
from realrl_replay.reader import ReplayReader
from realrl_replay.transition_schema import transition_schema
from realrl_replay.writer import ReplayWriter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _server():
    """A fork server that imported torch and the learner once: the ranks fork from it."""
    ctx = multiprocessing.get_context('forkserver')
    ctx.set_forkserver_preload(['data_parallel_rank'])
    return ctx


def run_ranks(world: int, *args) -> None:
    """Start `world` processes of data_parallel_rank.rank_main with torchrun's environment;
    all are reaped."""
    port = str(free_port())
    ctx = _server()
    procs = []
    for rank in range(world):
        env = {'RANK': str(rank), 'LOCAL_RANK': str(rank), 'WORLD_SIZE': str(world),
               'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': port}
        procs.append(ctx.Process(target=data_parallel_rank.rank_main, args=(env, *args)))
        procs[-1].start()
    try:
        for p in procs:
            p.join(60)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    codes = [p.exitcode for p in procs]
    assert codes == [0] * world, f'ranks exited {codes} (their errors are printed above)'


def vla_batch(n: int, gen: torch.Generator) -> dict:
    return {'obs': torch.randn(n, 3, generator=gen),
            'image': torch.randint(0, 256, (n, 16, 16, 3), generator=gen, dtype=torch.uint8),
            'instruction': torch.randint(1, 120, (n, VLA.max_tokens), generator=gen),
            'action_chunk': torch.rand(n, VLA.chunk, 2, generator=gen) * 2 - 1}


VLA = VLATinyConfig(hidden_sizes=(32,), embed_dim=16, chunk=3, head='regression',
                    image_shape=(3, 16, 16), max_tokens=16)


def test_two_ranks_train_as_one_process_on_the_doubled_batch(tmp_path):
    """BC, 4 steps on fixed batches of 16 rows: an MLP with its gradient clipped (the clip
    binds: it must see the averaged gradient) and accumulated over two micro-batches; the
    large-policy options on vla_tiny (vision frozen, accumulation; float32, then bf16)."""
    gen = torch.Generator().manual_seed(1)
    large = {'actor': VLA, 'freeze': ('vision',), 'grad_accumulation_steps': 2, 'lr': 1e-2}
    runs = [{'cfg': BCConfig(batch_size=16, lr=1e-2, max_grad_norm=0.05,
                             grad_accumulation_steps=2), 'state_dim': 4, 'act_dim': 2,
             'batches': [{'obs': torch.randn(16, 4, generator=gen),
                          'action': torch.rand(16, 2, generator=gen) * 2 - 1}
                         for _ in range(4)]},
            {'cfg': BCConfig(**large), 'state_dim': 3, 'act_dim': 2,
             'batches': [vla_batch(16, gen) for _ in range(4)]},
            {'cfg': BCConfig(**large, precision='bf16'), 'state_dim': 3, 'act_dim': 2,
             'batches': [vla_batch(16, gen) for _ in range(4)]}]
    torch.save(runs, tmp_path / 'batches.pt')
    run_ranks(2, 'steps', tmp_path, 4)
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]

    # bf16: rounding differs with the rows' split, and Adam magnifies it where gradients are
    # near 0; there the ranks must agree with each other and leave the frozen part as it was
    for i, (run, tolerance) in enumerate(zip(runs, (1e-6, 1e-6, None))):
        one = BC(run['state_dim'], run['act_dim'], run['cfg'], seed=0)
        start = {k: v.clone() for k, v in one.actor.state_dict().items()}
        for batch in run['batches']:
            one.update(batch)
        half = BC(run['state_dim'], run['act_dim'], run['cfg'], seed=0)  # no averaging
        for batch in run['batches']:
            half.update({k: v[:8] for k, v in batch.items()})
        final = one.actor.state_dict()
        assert any(not torch.equal(v, start[n]) for n, v in final.items())
        assert any(not torch.equal(v, start[n]) for n, v in ranks[0][i].items())
        for name, value in final.items():
            torch.testing.assert_close(ranks[1][i][name], ranks[0][i][name], atol=0, rtol=0)
            if tolerance is not None:
                torch.testing.assert_close(ranks[0][i][name], value, atol=tolerance,
                                           rtol=1e-5, msg=lambda m: f'run {i} {name}: {m}')
            if name.startswith('vision.'):  # frozen: untouched on every rank
                torch.testing.assert_close(ranks[0][i][name], start[name], atol=0, rtol=0)
        if tolerance is None:
            continue
        moved = max(float((half.actor.state_dict()[n] - v).abs().max())
                    for n, v in final.items())
        assert moved > 10 * tolerance  # the tolerance tells averaged from rank-local training


def test_a_checkpoint_of_two_ranks_resumes_onto_one_and_onto_three(tmp_path):
    writer = ReplayWriter.create(tmp_path / 'store', transition_schema(DESC),
                                 {'robots': {'arm0': DESC}})
    fill(writer, 1, 60, np.random.default_rng(0))
    writer.close()
    store, ckpt = tmp_path / 'store', tmp_path / 'ckpt'
    (tmp_path / 'two').mkdir()
    run_ranks(2, 'train', tmp_path / 'two', store, ckpt, 6, 3)
    two = [torch.load(tmp_path / 'two' / f'rank{r}.pt', weights_only=False) for r in range(2)]
    assert two[0]['updates'] == two[1]['updates'] == 3
    for name, value in two[0]['actor'].items():
        torch.testing.assert_close(two[1]['actor'][name], value, atol=0, rtol=0)
    assert two[0]['rngs_at_checkpoint'] != two[1]['rngs_at_checkpoint']  # own streams
    saved = torch.load(ckpt / 'latest.pt', weights_only=True)
    assert sorted(p.name for p in ckpt.glob('ckpt_*.pt')) == ['ckpt_000000003.pt']

    # onto one process (no ranks): rank 0's weights, optimisers and streams, and on it goes
    cfg = TrainerConfig(sac=SACConfig(batch_size=6, learning_starts=0), refresh_every_s=0.0)
    shutil.copytree(ckpt, tmp_path / 'ckpt1')
    one = Trainer(cfg, ReplayReader(store), tmp_path / 'ckpt1')
    assert one.load_latest() and one.algorithm.updates == 3
    for name, value in one.algorithm.actor.state_dict().items():
        torch.testing.assert_close(value, two[0]['actor'][name], atol=0, rtol=0)
    assert sampler_rng_states(one.sampler) == two[0]['rngs_at_checkpoint']
    assert saved['algorithm']['actor_opt']['state']  # Adam's moments travel too
    assert sum(one.step() for _ in range(2)) == 2 and one.algorithm.updates == 5
    one.close()

    # onto three ranks: ranks 0 and 1 continue their streams, rank 2 starts its own
    (tmp_path / 'three').mkdir()
    run_ranks(3, 'train', tmp_path / 'three', store, ckpt, 6, 5)
    three = [torch.load(tmp_path / 'three' / f'rank{r}.pt', weights_only=False)
             for r in range(3)]
    for r in range(3):
        assert three[r]['resumed_updates'] == 3 and three[r]['updates'] == 5
        for name, value in two[0]['actor'].items():
            torch.testing.assert_close(three[r]['resumed_actor'][name], value, atol=0, rtol=0)
            torch.testing.assert_close(three[r]['actor'][name], three[0]['actor'][name],
                                       atol=0, rtol=0)
    for r in range(2):
        assert three[r]['resumed_rngs'] == two[r]['rngs_at_checkpoint']
    assert three[2]['resumed_rngs'] not in (two[0]['rngs_at_checkpoint'],
                                            two[1]['rngs_at_checkpoint'])
    trained = torch.load(ckpt / 'latest.pt', weights_only=True)
    assert trained['algorithm']['updates'] == 5
    assert len(json.loads(trained['rank_rngs'])) == 3


def test_ranks_are_validated_naming_the_field_and_launched_through_torchrun():
    from realrl_common.config import ConfigError, build_config
    from realrl_learner.node_config import LearnerNodeConfig, launch_command
    for params, says in (({'ranks': 0}, 'ranks must be an integer >= 1'),
                         ({'ranks': 3, 'algorithm': {'type': 'sac', 'batch_size': 256}},
                          'algorithm.batch_size (256) must be a multiple of ranks (3)'),
                         ({'ranks': 2, 'mode': 'sync'}, 'set mode: async or ranks: 1')):
        try:
            build_config(LearnerNodeConfig, params)
        except (ConfigError, ValueError) as e:
            assert says in str(e)
        else:
            raise AssertionError(f'{params} was accepted')
    one = build_config(LearnerNodeConfig, {})
    assert launch_command(one, ['learner_node', '--ros-args']) == ['learner_node', '--ros-args']
    two = build_config(LearnerNodeConfig, {'ranks': 2, 'rank_restarts': 4})
    assert launch_command(two, ['learner_node', '--ros-args']) == [
        sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node=2',
        '--max-restarts=4', '--no-python', 'learner_node', '--ros-args']


def test_rank_zero_publishes_from_a_thread_while_training_goes_on(tmp_path):
    """The version handed out is the weights at the snapshot, sent while updates go on."""
    writer = ReplayWriter.create(tmp_path / 'store', transition_schema(DESC),
                                 {'robots': {'arm0': DESC}})
    fill(writer, 1, 40, np.random.default_rng(0))
    cfg = TrainerConfig(sac=SACConfig(batch_size=4, learning_starts=0), refresh_every_s=0.0)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
    gate, sent = threading.Event(), []
    publisher = PublishThread(lambda v, blob: (gate.wait(30), sent.append((v, blob))),
                              trainer.space.to_json())
    try:
        assert trainer.step() and trainer.step()
        publisher.submit(*trainer.snapshot_weights(now=1.0))
        at_snapshot = pack_actor(copy.deepcopy(trainer.algorithm.actor), trainer.space.to_json())
        assert sum(trainer.step() for _ in range(3)) == 3 and not publisher.idle
        gate.set()
        deadline = time.monotonic() + 30
        while not publisher.idle and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [v for v, _ in sent] == [1]
        obs = np.ones(4, np.float32)
        now = pack_actor(trainer.algorithm.actor, trainer.space.to_json())
        np.testing.assert_array_equal(unpack_actor(sent[0][1]).act(obs, True),
                                      unpack_actor(at_snapshot).act(obs, True))
        assert not np.array_equal(unpack_actor(now).act(obs, True),
                                  unpack_actor(at_snapshot).act(obs, True))
    finally:
        gate.set()
        publisher.close()
        trainer.close()
        writer.close()


def test_a_packed_version_is_sent_by_the_thread_and_a_failed_send_is_reported():
    """One learner's async mode: the blob packed on the training thread is sent beside it
    (paced sends take long); the next version waits until it is out, and a send that
    failed is raised on the training thread at the next hand-over."""
    gate, sent = threading.Event(), []

    def send(version, blob):
        gate.wait(30)
        if blob == b'bad':
            raise OSError('publisher gone')
        sent.append((version, blob))
    publisher = PublishThread(send, None)
    try:
        publisher.submit_blob(1, b'v1')
        assert not publisher.idle
        with pytest.raises(RuntimeError, match='still being published'):
            publisher.submit_blob(2, b'v2')
        gate.set()
        deadline = time.monotonic() + 30
        while not publisher.idle and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sent == [(1, b'v1')]
        publisher.submit_blob(2, b'bad')
        while not publisher.idle and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(RuntimeError, match='publisher gone'):
            publisher.submit_blob(3, b'v3')
        assert sent == [(1, b'v1')]
    finally:
        gate.set()
        publisher.close()
