"""Algorithms as plug-ins (realrl_learner.algorithms): choosing one by type, clear errors,
RLPD learning from demonstrations, exact resume of algorithm and trainer.

RLPD's check: PointReach (test_sac_learning) with 20 scripted demonstrations mixed 50/50
into every batch solves the task well inside a budget where the same RLPD without the
demonstrations, or with the reward's sign flipped in its target, does not. Seeds are fixed.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from store_rows import store_record
from test_sac_learning import PointReach

from realrl_common.config import ConfigError, build_config
from realrl_learner.algorithms import algorithm_config, build_algorithm
from realrl_learner.algorithms.rlpd import RLPD, RLPDConfig
from realrl_learner.sac import SAC, SACConfig
from realrl_learner.trainer import TrainerConfig
from realrl_policy.models import ActorConfig

torch.set_num_threads(1)
KEYS = ('obs', 'action', 'reward', 'next_obs', 'terminated')


# -- choosing an algorithm ------------------------------------------------------------------
def test_the_type_picks_the_algorithm_and_sac_is_the_default():
    assert type(TrainerConfig().algorithm) is SACConfig
    cfg = TrainerConfig(algorithm={'type': 'rlpd', 'num_critics': 4})
    assert type(cfg.algorithm) is RLPDConfig and cfg.algorithm.num_critics == 4
    assert cfg.sac is None
    assert type(build_algorithm(4, 2, cfg.algorithm)) is RLPD
    # the old 'sac' section is the same as algorithm: {type: sac, ...}
    old = TrainerConfig(sac={'batch_size': 64})
    assert old.algorithm == SACConfig(batch_size=64) and old.sac is old.algorithm
    assert dataclasses.replace(old, seed=3).algorithm == old.algorithm


@pytest.mark.parametrize('values, message', [
    ({'algorithm': {'type': 'ppo'}}, r"algorithm.type: unknown algorithm type 'ppo'; known: "
                                     r"\[.*'rlpd', 'sac'.*\]"),
    ({'algorithm': {'type': 'rlpd', 'num_critic': 3}},
     r"unknown key 'algorithm.num_critic'; did you mean 'algorithm.num_critics'"),
    ({'algorithm': {'type': 'rlpd', 'target_subset': 5, 'num_critics': 3}},
     r'algorithm: target_subset must be in 1..num_critics \(3\), got 5'),
    ({'sac': {'batchsize': 3}}, r"unknown key 'sac.batchsize'; did you mean 'sac.batch_size'"),
    ({'sac': {'batch_size': 3}, 'algorithm': {'type': 'rlpd'}}, r"not both"),
    ({'algorithm': 'rlpd'}, r'algorithm: expected a mapping with a type'),
])
def test_bad_algorithm_configs_name_the_field(values, message):
    with pytest.raises(ConfigError, match=message):
        build_config(TrainerConfig, values)


def test_an_algorithm_config_round_trips_through_its_plain_form():
    from realrl_common.config import config_to_dict
    cfg = TrainerConfig(algorithm={'type': 'rlpd', 'critic_hidden_sizes': [32, 32]})
    again = build_config(TrainerConfig, config_to_dict(cfg))
    assert again.algorithm == cfg.algorithm and config_to_dict(cfg)['algorithm']['type'] == 'rlpd'
    assert algorithm_config(cfg.algorithm) is cfg.algorithm


# -- RLPD learns from demonstrations ---------------------------------------------------------
def expert(obs: np.ndarray) -> np.ndarray:
    """Straight to the goal at full speed (obs holds goal - position)."""
    return np.clip(obs[2:] / 0.15, -1.0, 1.0).astype(np.float32)


def demonstrations(episodes: int = 20, seed: int = 100) -> dict[str, np.ndarray]:
    env, rows = PointReach(seed), {k: [] for k in KEYS}
    for _ in range(episodes):
        obs, done = env.reset(), False
        while not done:
            action = expert(obs)
            next_obs, reward, success, truncated = env.step(action)
            for key, value in zip(KEYS, (obs, action, [reward], next_obs, [success])):
                rows[key].append(np.asarray(value, np.float32))
            obs, done = next_obs, success or truncated
    return {k: np.stack(v) for k, v in rows.items()}


class FlippedRewardRLPD(RLPD):
    """Mutation: the target regresses on minus the reward."""

    def td_target(self, reward, *args):
        return super().td_target(-reward, *args)


RLPD_CFG = RLPDConfig(batch_size=64, learning_starts=50, updates_per_step=2.0,
                      actor_update_interval=1, num_critics=5, gamma=0.9, actor_lr=1e-3,
                      critic_lr=1e-3, alpha_lr=1e-3, init_temperature=0.1, tau=0.01,
                      actor=ActorConfig(hidden_sizes=(64, 64)), critic_hidden_sizes=(64, 64))
RLPD_BUDGET = 550
"""With demonstrations RLPD solves it by step 375-436 (seeds 0-2), without by 698 (seed 0)."""


def rlpd_solves(algorithm, demos: dict | None, seed: int = 0) -> int | None:
    """PointReach with RLPD's loop: UTD updates per step, half of each batch demos; the
    step where 18 of the last 20 episodes succeeded, or None within RLPD_BUDGET."""
    cfg = algorithm.cfg
    env, rng = PointReach(seed), np.random.default_rng(seed)
    online = {k: np.zeros((RLPD_BUDGET, w), np.float32) for k, w in zip(KEYS, (4, 2, 1, 4, 1))}
    obs, outcomes = env.reset(), []
    for step in range(RLPD_BUDGET):
        if step < cfg.learning_starts:
            action = rng.uniform(-1, 1, 2).astype(np.float32)
        else:
            with torch.no_grad():
                action = algorithm.actor(torch.as_tensor(obs[None]))[0][0].numpy()
        next_obs, reward, success, truncated = env.step(action)
        for key, value in zip(KEYS, (obs, action, reward, next_obs, success)):
            online[key][step] = value
        obs = next_obs
        if step >= cfg.learning_starts:
            for _ in range(int(cfg.updates_per_step)):
                algorithm.update(mixed_batch(online, step + 1, demos, cfg.batch_size, rng))
        if success or truncated:
            outcomes.append(success)
            obs = env.reset()
            if len(outcomes) >= 20 and np.mean(outcomes[-20:]) >= 0.9:
                return step
    return None


def mixed_batch(online, n_online, demos, size, rng) -> dict[str, torch.Tensor]:
    """Half demos, half online rows (all online without demos): symmetric sampling."""
    k = size // 2 if demos is not None else size
    idx = rng.integers(0, n_online, k)
    parts = [{key: v[idx] for key, v in online.items()}]
    if demos is not None:
        jdx = rng.integers(0, len(demos['obs']), size - k)
        parts.append({key: v[jdx] for key, v in demos.items()})
    return {key: torch.from_numpy(np.concatenate([p[key] for p in parts])) for key in KEYS}


@pytest.mark.parametrize('cls, with_demos, learns', [
    (RLPD, True, True), (RLPD, False, False), (FlippedRewardRLPD, True, False)])
def test_rlpd_with_demonstrations_solves_point_reach_quickly(cls, with_demos, learns):
    demos = demonstrations() if with_demos else None
    step = rlpd_solves(cls(4, 2, RLPD_CFG, seed=0), demos)
    assert (step is not None) == learns, f'{cls.__name__}, demos {with_demos}: solved at {step}'


def test_rlpd_targets_take_the_minimum_of_a_random_pair_of_critics():
    algo = RLPD(4, 2, dataclasses.replace(RLPD_CFG, num_critics=6, target_subset=2), seed=0)
    batch = mixed_batch({k: torch.rand(32, w).numpy() for k, w in zip(KEYS, (4, 2, 1, 4, 1))},
                        32, None, 32, np.random.default_rng(0))
    next_obs = batch['next_obs']
    torch.manual_seed(5)
    with torch.no_grad():
        target = algo.td_target(batch['reward'], next_obs, batch['terminated'], None,
                                torch.tensor(0.0))
    torch.manual_seed(5)  # the same draws again: the actor's noise, then the pair
    with torch.no_grad():
        next_action = algo.actor(next_obs)[0]
        pair = torch.randperm(6)[:2]
        q = algo.critic_target(next_obs, next_action)
    expected = batch['reward'] + 0.9 * (1 - batch['terminated']) * q[pair].min(dim=0).values
    torch.testing.assert_close(target, expected)
    assert not torch.allclose(q[pair].min(dim=0).values, q.min(dim=0).values)  # not all 6


def test_an_rlpd_checkpoint_of_the_earlier_critic_layout_loads():
    """A checkpoint written by RLPD before its critics became a CriticStack (made by that code:
    test/fixtures/rlpd_sequential_critics.pt, 'net.<i>' keys, 3 critics of (8, 8) with
    LayerNorm, after 3 updates) loads: the critics and target critics give the Q values they
    gave then, and each tensor's Adam moments follow it to its new place."""
    from pathlib import Path
    saved = torch.load(Path(__file__).parents[1] / 'fixtures' / 'rlpd_sequential_critics.pt',
                       weights_only=True)
    cfg = RLPDConfig(batch_size=8, num_critics=3, critic_hidden_sizes=(8, 8),
                     actor=ActorConfig(hidden_sizes=(8,)), actor_update_interval=1,
                     critic_matmul_dtype='float32', actor_matmul_dtype='float32')
    algo = RLPD(4, 2, cfg, seed=5)
    algo.load_state_dict(saved['state'])
    probe = saved['probe']
    with torch.no_grad():
        torch.testing.assert_close(algo.critic(probe['obs'], probe['action']), saved['q'])
        torch.testing.assert_close(algo.critic_target(probe['obs'], probe['action']),
                                   saved['q_target'])
    was = {'weights.0': 'net.0.weight', 'biases.0': 'net.0.bias', 'norms.0.weight': 'net.1.weight',
           'norms.1.bias': 'net.4.bias', 'weights.2': 'net.6.weight', 'biases.2': 'net.6.bias'}
    new_names, old_names = list(algo.critic.state_dict()), list(saved['state']['critic'])
    moments = algo.critic_opt.state_dict()['state']
    old_moments = saved['state']['critic_opt']['state']
    for name, old_name in was.items():
        for key in ('exp_avg', 'exp_avg_sq'):
            torch.testing.assert_close(moments[new_names.index(name)][key],
                                       old_moments[old_names.index(old_name)][key],
                                       rtol=0, atol=0)
    algo.update(fixed_batches(1)[0])  # the moved moments fit their tensors
    assert algo.updates == saved['state']['updates'] + 1


# -- exact resume ------------------------------------------------------------------------------
def fixed_batches(n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{'obs': torch.rand(32, 4, generator=g), 'action': torch.rand(32, 2, generator=g),
             'reward': torch.rand(32, 1, generator=g), 'next_obs': torch.rand(32, 4, generator=g),
             'terminated': (torch.rand(32, 1, generator=g) < 0.1).float()} for _ in range(n)]


@pytest.mark.parametrize('cls, cfg', [
    (SAC, SACConfig(batch_size=32, actor_update_interval=2)),
    (RLPD, dataclasses.replace(RLPD_CFG, actor_update_interval=3))])
def test_continuing_after_a_reload_gives_the_same_updates_as_not_stopping(tmp_path, cls, cfg):
    batches = fixed_batches(12)
    straight = cls(4, 2, cfg, seed=1)
    for b in batches:
        straight.update(b)

    first = cls(4, 2, cfg, seed=1)
    for b in batches[:7]:
        first.update(b)
    torch.save({'algorithm': first.state_dict(), 'rng': torch.get_rng_state()},
               tmp_path / 'ckpt.pt')
    torch.manual_seed(99)  # whatever ran in between
    state = torch.load(tmp_path / 'ckpt.pt', weights_only=True)
    resumed = cls(4, 2, cfg, seed=2)  # other initial weights: all must come from the file
    resumed.load_state_dict(state['algorithm'])
    torch.set_rng_state(state['rng'])
    for b in batches[7:]:
        resumed.update(b)

    assert resumed.updates == straight.updates == 12
    for a, b in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert a[0] == b[0]
        if isinstance(a[1], torch.Tensor):
            torch.testing.assert_close(a[1], b[1], rtol=0, atol=0)
    for key, value in straight.critic.state_dict().items():
        torch.testing.assert_close(value, resumed.critic.state_dict()[key], rtol=0, atol=0)
    for key, value in straight.actor_opt.state_dict()['state'].items():
        torch.testing.assert_close(value['exp_avg'],
                                   resumed.actor_opt.state_dict()['state'][key]['exp_avg'],
                                   rtol=0, atol=0)


def point_store(path, n: int = 300, seed: int = 0):
    """A real replay store of n random-action PointReach transitions."""
    from realrl_replay import ReplayWriter, WriterConfig
    from realrl_replay.transition_schema import transition_schema
    desc = {'robot_id': 'point', 'state_dim': 4, 'action_dim': 2, 'action_low': [-1.0] * 2,
            'action_high': [1.0] * 2, 'cameras': [], 'image_size': [0, 0]}
    writer = ReplayWriter.create(path, transition_schema(desc), {'robots': {'point': desc}},
                                 config=WriterConfig(fsync=False))
    env, rng = PointReach(seed), np.random.default_rng(seed)
    obs, episode, t = env.reset(), 0, 0
    for i in range(n):
        action = rng.uniform(-1, 1, 2).astype(np.float32)
        next_obs, reward, success, truncated = env.step(action)
        writer.append([store_record(writer, {
            'robot_id': 'point', 'seq': i, 'obs/state': obs, 'next_obs/state': next_obs,
            'action': action, 'reward': np.float32(reward), 'terminated': success,
            'truncated': truncated and not success, 'episode_id': episode, 'step': t})])
        obs, t = next_obs, t + 1
        if success or truncated:
            obs, episode, t = env.reset(), episode + 1, 0
    writer.commit()
    writer.close()


def trainer_of(tmp_path, algorithm: dict, **kw):
    from realrl_learner.trainer import Trainer
    from realrl_replay import ReplayReader
    cfg = TrainerConfig(algorithm={'batch_size': 32, 'learning_starts': 10,
                                   'updates_per_step': 10.0, **algorithm},
                        refresh_every_s=0.0, seed=3, **kw)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
    trainer.sampler.fill()
    return trainer


def network_state(trainer) -> dict[str, torch.Tensor]:
    state = trainer.algorithm.state_dict()
    return {f'{k}.{n}': t.clone() for k in ('actor', 'critic', 'critic_target')
            for n, t in state[k].items()}


@pytest.mark.parametrize('algorithm', [{'type': 'sac'}, {'type': 'rlpd', 'num_critics': 3,
                                                          'actor_update_interval': 2}])
def test_a_trainer_resumed_from_its_checkpoint_continues_exactly(tmp_path, algorithm):
    """Through a real store: 8 updates, a checkpoint, 8 more; a new Trainer that loads the
    checkpoint makes the same 8 more (sampler draws, augmentation noise, optimiser state)."""
    point_store(tmp_path / 'store')
    trainer = trainer_of(tmp_path, algorithm)
    try:
        for _ in range(8):
            assert trainer.step()
        trainer.version = 4
        trainer.save_checkpoint()
        for _ in range(8):
            assert trainer.step()
        straight = network_state(trainer)
    finally:
        trainer.close()
    torch.manual_seed(123)  # a new process: other RNG state
    resumed = trainer_of(tmp_path, algorithm)
    try:
        assert resumed.load_latest()
        assert resumed.algorithm.updates == 8 and resumed.version == 4
        for _ in range(8):
            assert resumed.step()
        again = network_state(resumed)
    finally:
        resumed.close()
    assert straight.keys() == again.keys()
    for key, value in straight.items():
        torch.testing.assert_close(again[key], value, rtol=0, atol=0, msg=key)


def test_weights_are_published_every_n_updates_when_asked(tmp_path):
    point_store(tmp_path / 'store', n=100)
    trainer = trainer_of(tmp_path, {'type': 'sac'}, publish_every_updates=4,
                         publish_every_s=1e-3)
    published = []
    try:
        for _ in range(13):
            trainer.step()
            if trainer.publish_due(now=1e9):
                published.append(trainer.algorithm.updates)
                trainer.next_weights(1e9)
    finally:
        trainer.close()
    assert published == [4, 8, 12]


def test_a_checkpoint_of_another_algorithm_is_refused(tmp_path):
    point_store(tmp_path / 'store', n=100)
    trainer = trainer_of(tmp_path, {'type': 'sac'})
    try:
        trainer.step()
        trainer.save_checkpoint()
    finally:
        trainer.close()
    other = trainer_of(tmp_path, {'type': 'rlpd'})
    try:
        with pytest.raises(ValueError, match="checkpoint of algorithm 'sac'.*set algorithm.type"):
            other.load_latest()
    finally:
        other.close()
