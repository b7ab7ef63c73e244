"""Peg insertion from pixels (config/peg_sim.yaml): the graph validates, record_demos takes
its driver parameters from it, the trainer's cache holds camera rows whatever cache_bytes
says, and an update encodes obs and next_obs once each (the target critics have no encoder)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from store_rows import store_record

from realrl_bringup.graph import load_graph
from realrl_common.config import ConfigError, build_config
from realrl_driver.robots.mujoco_arm.peg_config import MujocoPegDriverConfig
from realrl_driver.robots.mujoco_arm.record_demos import driver_params
from realrl_learner.algorithms import ObservationSpec
from realrl_learner.algorithms.rlpd import RLPD, RLPDConfig
from realrl_learner.node_config import LearnerNodeConfig
from realrl_learner.trainer import FIELDS, MIN_CACHE_BLOCKS, cache_bytes_for
from realrl_policy.encoders import EncoderConfig
from realrl_policy.models import ActorConfig
from realrl_replay.import_demos import import_demos
from realrl_replay.reader import ReplayReader
from realrl_replay.sampler import Sampler
from realrl_replay.sampler_config import SamplerConfig

torch.set_num_threads(1)
GRAPH = Path(__file__).resolve().parents[2] / 'config' / 'peg_sim.yaml'


def test_the_peg_graph_learns_rlpd_from_pixels_and_demos(tmp_path):
    graph = load_graph(GRAPH, {'run_dir': str(tmp_path)}, ['learner.demo_stores=[]'])
    assert graph.robot_ids() == ['peg0']
    params = {n.name: n.parameters for n in graph.nodes}
    learner = build_config(LearnerNodeConfig, params['learner'])
    assert learner.algorithm.type == 'rlpd' and learner.algorithm.actor.type == 'cnn'
    assert learner.algorithm.actor.encoder.cameras == ('front', 'wrist')
    driver = build_config(MujocoPegDriverConfig, params['driver'])
    assert driver.control_hz == 10.0 and tuple(driver.image_size) == (32, 32)
    # as shipped it reads the demonstrations the README's first command records
    raw = yaml.safe_load(GRAPH.read_text())
    learner_params = next(n for n in raw['nodes'] if n['name'] == 'learner')['parameters']
    assert learner_params['demo_stores'] == ['runs/peg_demos']
    with pytest.raises(ConfigError, match=r"demo_stores: '.*nope' is not a replay store"):
        load_graph(GRAPH, {'run_dir': str(tmp_path)}, [f'learner.demo_stores=[{tmp_path}/nope]'])


def test_record_demos_takes_the_driver_parameters_of_a_graph():
    raw = yaml.safe_load(GRAPH.read_text())
    params = driver_params(raw, str(GRAPH))
    assert params['image_size'] == [32, 32] and params['cameras'] == ['front', 'wrist']
    assert 'robot_id' not in params  # the demonstrations are stored under --robot
    assert driver_params({'image_size': [16, 16]}, 'p.yaml') == {'image_size': [16, 16]}
    with pytest.raises(ConfigError, match='0 mujoco_peg_driver nodes'):
        driver_params({'nodes': [{'name': 'x', 'executable': 'mujoco_arm_driver'}]}, 'g.yaml')


def test_the_cache_holds_camera_rows_where_the_default_cannot(tmp_path):
    rng = np.random.default_rng(0)
    episodes = tmp_path / 'episodes'
    episodes.mkdir()
    for e in range(2):
        n = 40
        images = rng.integers(0, 255, (n + 1, 64, 64, 3), np.uint8)
        state = rng.standard_normal((n + 1, 5)).astype(np.float32)
        np.savez(episodes / f'episode_{e}.npz', actions=rng.uniform(-1, 1, (n, 3)),
                 rewards=np.zeros(n, np.float32), dones=np.arange(n) == n - 1,
                 **{'obs/state': state[:-1], 'next_obs/state': state[1:],
                    'obs/front_image': images[:-1], 'next_obs/front_image': images[1:],
                    'obs/wrist_image': images[:-1], 'next_obs/wrist_image': images[1:]})
    import_demos(tmp_path / 'store', episodes, 'npz', state_keys=['state'])
    reader = ReplayReader(tmp_path / 'store')
    fields = FIELDS + tuple(f'{s}/image_{c}' for c in ('front', 'wrist')
                            for s in ('obs', 'next_obs'))
    base = SamplerConfig(batch_size=32, fields=fields, seed=0)
    with pytest.raises(ValueError, match='raise cache_bytes'):  # the learner's crash-loop
        Sampler(reader, SamplerConfig(**{**vars(base), 'cache_bytes': 16 << 20}))
    cache = cache_bytes_for(16 << 20, [reader], fields)
    assert cache >= MIN_CACHE_BLOCKS * 64 * 64 * 3 * 4
    assert cache_bytes_for(cache * 2, [reader], fields) == cache * 2  # a larger ask stands
    sampler = Sampler(reader, SamplerConfig(**{**vars(base), 'cache_bytes': cache}))
    try:
        batch = sampler.sample(32)
        assert batch['obs/image_front'].shape == (32, 64, 64, 3)
    finally:
        sampler.close()


def test_an_update_encodes_obs_and_next_obs_once_each_and_the_targets_hold_no_encoder():
    spec = ObservationSpec(4, ('front', 'wrist'), (16, 16))
    actor_cfg = ActorConfig(type='cnn', hidden_sizes=(32, 32), encoder=EncoderConfig(
        cameras=('front', 'wrist'), channels=8, blocks=1, feature_dim=16, stem_stride=2))
    algo = RLPD(spec, 2, RLPDConfig(num_critics=3, actor=actor_cfg, critic_hidden_sizes=(32,),
                                    actor_update_interval=1))
    calls = []
    algo.actor.encoder.register_forward_hook(lambda m, i, o: calls.append(torch.is_grad_enabled()))
    trunk_shapes = []
    algo.actor.encoder.trunk.register_forward_hook(lambda m, i, o: trunk_shapes.append(o.shape))
    gen = torch.Generator().manual_seed(1)

    def obs():
        return {'state': torch.randn(8, 4, generator=gen),
                **{f'image_{c}': torch.randint(0, 255, (8, 16, 16, 3), generator=gen,
                                               dtype=torch.uint8) for c in ('front', 'wrist')}}
    batch = {'obs': obs(), 'next_obs': obs(), 'action': torch.rand(8, 2) * 2 - 1,
             'reward': torch.rand(8), 'terminated': torch.zeros(8)}
    before = [p.clone() for p in algo.actor.encoder.parameters()]
    metrics = algo.update(batch)  # a critic step and an actor step
    assert 'train/actor_loss' in metrics
    assert calls == [True, False]  # obs with gradients (the critics'), next_obs without
    assert all(s[-2:] == (8, 8) for s in trunk_shapes)  # stride 2: the trunk at 8x8
    assert any(not torch.equal(a, b) for a, b in zip(before, algo.actor.encoder.parameters()))
    names = [n for n, _ in algo.critic_target.named_parameters()]
    assert names and not any('encoder' in n for n in names)
    # a checkpoint from when the target critics held an encoder copy still loads
    state = algo.state_dict()
    state['critic_target'] = {f'critic.{k}': v for k, v in state['critic_target'].items()}
    state['critic_target'].update({f'encoder.{k}': v for k, v in
                                   algo.actor.encoder.state_dict().items()})
    algo.load_state_dict(state)
    with pytest.raises(ValueError, match='stem_stride must be 1 or 2'):
        EncoderConfig(cameras=('front',), stem_stride=3)


def test_demonstrations_mix_into_a_store_the_replay_node_made(tmp_path):
    """The replay node's store has a per-row embodiment, import_demos' stores do not: with
    one robot kind the trainer needs no embodiment, and mixes them (it crash-looped)."""
    from realrl_learner.sac import SACConfig
    from realrl_learner.trainer import Trainer, TrainerConfig
    from realrl_replay.transition_schema import store_schema, transition_schema
    from realrl_replay.writer import ReplayWriter
    desc = {'robot_id': 'arm0', 'state_dim': 4, 'action_dim': 2, 'action_low': [-1.0, -1.0],
            'action_high': [1.0, 1.0], 'cameras': [], 'image_size': [0, 0]}
    rng = np.random.default_rng(0)

    def fill(writer, n, value, embodiment):
        writer.append([store_record(writer, {
            'robot_id': 'arm0', 'seq': 1 + i, 'episode_id': 0, 'step': i,
            'obs/state': np.full(4, value, np.float32),
            'next_obs/state': rng.normal(size=4).astype(np.float32),
            'action': np.zeros(2, np.float32), 'reward': np.float32(0),
            'terminated': False, 'truncated': False,
            **({'embodiment': np.int16(0)} if embodiment else {})}) for i in range(n)])
        writer.commit()
        writer.close()

    meta = {'robots': {'arm0': desc}}
    fill(ReplayWriter.create(tmp_path / 'demo', transition_schema(desc),
                             {**meta, 'source': 'demo'}), 100, 7.0, embodiment=False)
    online_schema, _ = store_schema({'arm0': desc})
    assert 'embodiment' in online_schema
    fill(ReplayWriter.create(tmp_path / 'store', online_schema, meta), 100, 0.0, embodiment=True)
    cfg = TrainerConfig(sac=SACConfig(batch_size=64, learning_starts=0), refresh_every_s=0.0,
                        demo_stores=(str(tmp_path / 'demo'),), demo_ratio=0.5)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
    try:
        rows = trainer.sampler.sample()
        from_demos = rows['source'] == trainer.sampler.names.index('demos')
        assert from_demos.sum() == 32 and (rows['obs/state'][from_demos] == 7.0).all()
        assert trainer.step()
    finally:
        trainer.close()
