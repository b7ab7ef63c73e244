"""Behaviour cloning and HG-DAgger (realrl_learner.algorithms) on toy tasks, real torch."""

import numpy as np
import pytest
import torch
from store_rows import store_record

from realrl_common.plugins import ALGORITHMS, lookup
from realrl_learner.algorithms.bc import BC, BCConfig
from realrl_learner.algorithms.common import chunk_targets
from realrl_learner.algorithms.hg_dagger import (
    ExpertRows,
    HGDAgger,
    HGDAggerConfig,
    intervention_rate,
)
from realrl_learner.algorithms.takeover import TakeoverRule, run_episode
from realrl_learner.sac import SACConfig
from realrl_learner.trainer import Trainer, TrainerConfig
from realrl_policy.models import ActorConfig
from realrl_replay.reader import ReplayReader
from realrl_replay.transition_schema import transition_schema
from realrl_replay.writer import ReplayWriter

torch.set_num_threads(1)
SMALL = ActorConfig(hidden_sizes=(64, 64))


# --------------------------------------------------------------- a toy reach task
class PointReach:
    """A point in the plane moves by 0.1 * action toward a goal; state (pos, goal, goal-pos)."""

    STEP, RADIUS, MAX_STEPS = 0.1, 0.05, 40

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def reset(self) -> np.ndarray:
        self.pos = self.rng.uniform(-1, 1, 2)
        self.goal = self.rng.uniform(-1, 1, 2)
        return self.obs()

    def obs(self) -> np.ndarray:
        return np.concatenate([self.pos, self.goal, self.goal - self.pos]).astype(np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        self.pos = self.pos + self.STEP * np.clip(action, -1, 1)
        return self.obs(), bool(np.linalg.norm(self.goal - self.pos) < self.RADIUS)


def expert(obs: np.ndarray) -> np.ndarray:
    return np.clip(obs[4:6] / PointReach.STEP, -1, 1).astype(np.float32)


def greedy(algo) -> callable:
    return lambda obs: algo.actor.act(obs, deterministic=True)


def success_rate(algo, episodes: int = 30, seed: int = 1000) -> float:
    env = PointReach(seed)
    return np.mean([run_episode(env.reset, env.step, greedy(algo), expert,
                                PointReach.MAX_STEPS).success for _ in range(episodes)])


# --------------------------------------------------------------------- tests
def expert_rows(episodes: int = 20) -> tuple[torch.Tensor, ...]:
    """The expert's (obs, action) over `episodes` episodes of PointReach(0), and 200
    held-out starts of PointReach(99) with the expert's actions there."""
    env = PointReach(0)
    rows = [run_episode(env.reset, env.step, expert, expert, PointReach.MAX_STEPS)
            for _ in range(episodes)]
    held_out = PointReach(99)
    test_obs = torch.as_tensor(np.stack([held_out.reset() for _ in range(200)]))
    return (torch.as_tensor(np.concatenate([r.obs for r in rows])),
            torch.as_tensor(np.concatenate([r.action for r in rows])), test_obs,
            torch.as_tensor(np.stack([expert(o) for o in test_obs.numpy()])))


def test_bc_regresses_a_toy_expert():
    obs, action, test_obs, test_act = expert_rows()
    bc = BC(6, 2, BCConfig(actor=SMALL, lr=3e-3), seed=0)

    def error() -> float:
        with torch.no_grad():
            return float(((bc.actor(test_obs)[2] - test_act) ** 2).mean())

    before = error()
    g = torch.Generator().manual_seed(0)
    for _ in range(600):
        idx = torch.randint(0, len(obs), (128,), generator=g)
        metrics = bc.update({'obs': obs[idx], 'action': action[idx]})
    assert metrics['train/updates'] == 600
    assert error() < 0.05 < before
    assert success_rate(bc) >= 0.8


def test_hg_dagger_learns_from_a_scripted_experts_interventions():
    env = PointReach(0)
    algo = HGDAgger(6, 2, HGDAggerConfig(actor=SMALL, lr=3e-3, batch_size=64,
                                         pretrain_updates=200), seed=0)
    data = ExpertRows(seed=0)
    demo = run_episode(env.reset, env.step, expert, expert, PointReach.MAX_STEPS)
    data.add('demos', {'obs': demo.obs, 'action': demo.action})
    while algo.pretraining:
        algo.update(data.sample(64, 0.5, demos_only=True))
    before = success_rate(algo)

    rule = TakeoverRule(drift=0.3, hold_steps=4)
    round_rates = []
    for _ in range(5):
        logs = [run_episode(env.reset, env.step, greedy(algo), expert, PointReach.MAX_STEPS,
                            rule) for _ in range(8)]
        round_rates.append(float(np.mean([algo.record_episode(log.steps, log.interventions)
                                    for log in logs])))
        for log in logs:
            took = log.intervention
            if took.any():
                data.add('interventions', {'obs': log.obs[took], 'action': log.action[took]})
        for _ in range(150):
            metrics = algo.update(data.sample(64, 0.5))
    after = success_rate(algo)
    # the control: as many updates, on the demonstration alone
    control = HGDAgger(6, 2, algo.cfg, seed=0)
    while control.updates < algo.updates:
        control.update(data.sample(64, 0.5, demos_only=True))
    print(f'success {before:.2f} -> {after:.2f} (demo only: {success_rate(control):.2f}); '
          f'intervention rate per round {round_rates}')
    assert after >= before + 0.3 and after >= success_rate(control) + 0.3
    assert round_rates[-1] < 0.5 * round_rates[0]
    assert metrics['rollout/intervention_rate'] == pytest.approx(
        np.mean(algo.rate.rates[-20:]))


def test_hg_dagger_ignores_the_rows_the_robot_drove():
    algo = HGDAgger(6, 2, HGDAggerConfig(actor=SMALL, pretrain_updates=0), seed=0)
    before = [p.detach().clone() for p in algo.actor.parameters()]
    batch = {'obs': torch.randn(32, 6), 'action': torch.rand(32, 2) * 2 - 1,
             'intervention': torch.zeros(32)}
    metrics = algo.update(batch)
    assert metrics['train/intervention_share'] == 0.0 and algo.updates == 0
    assert all(torch.equal(a, b) for a, b in zip(before, algo.actor.parameters()))
    batch['intervention'][:4] = 1.0
    metrics = algo.update(batch)
    assert metrics['train/intervention_share'] == pytest.approx(4 / 32) and algo.updates == 1
    assert not all(torch.equal(a, b) for a, b in zip(before, algo.actor.parameters()))


def test_intervention_rate_is_per_episode_and_checked():
    assert intervention_rate(50, 10) == 0.2
    assert intervention_rate(0, 0) == 0.0
    with pytest.raises(ValueError, match='interventions'):
        intervention_rate(10, 11)


def test_expert_rows_sample_interventions_at_the_ratio():
    data = ExpertRows(seed=0)
    data.add('demos', {'obs': np.zeros((100, 1), np.float32)})
    data.add('interventions', {'obs': np.ones((10, 1), np.float32)})
    batch = data.sample(40, 0.25)
    assert int(batch['obs'].sum()) == 10 and bool(batch['intervention'].all())
    assert int(data.sample(40, 0.25, demos_only=True)['obs'].sum()) == 0


def test_chunk_targets_repeat_the_last_action_past_the_episode_end():
    actions = np.arange(5, dtype=np.float32)[:, None]
    chunks = chunk_targets(actions, 3)
    assert chunks.shape == (5, 3, 1)
    np.testing.assert_array_equal(chunks[0, :, 0], [0, 1, 2])
    np.testing.assert_array_equal(chunks[4, :, 0], [4, 4, 4])


def test_algorithms_are_registered_and_batches_are_checked():
    assert lookup(ALGORITHMS, 'hg_dagger', 'algorithm') is HGDAgger
    assert lookup(ALGORITHMS, 'bc', 'algorithm') is BC
    with pytest.raises(ValueError, match=r"unknown algorithm 'dagger'; known: \['bc'"):
        lookup(ALGORITHMS, 'dagger', 'algorithm')
    algo = HGDAgger(6, 2, HGDAggerConfig(actor=SMALL))
    assert algo.batch_keys == ('obs', 'action', 'intervention')
    with pytest.raises(ValueError, match="lacks \\['intervention'\\]"):
        algo.update({'obs': torch.zeros(4, 6), 'action': torch.zeros(4, 2)})
    with pytest.raises(ValueError, match='pretrain_updates'):
        HGDAggerConfig(pretrain_updates=-1)


# ------------------------------------------------- through a real replay store
STORE_ROBOT = {'robot_id': 'arm0', 'state_dim': 4, 'action_dim': 2, 'action_low': [-2.0, 0.0],
               'action_high': [2.0, 1.0], 'cameras': [], 'image_size': [0, 0]}


def store_expert(states: np.ndarray) -> np.ndarray:
    """The person's action in robot units: a0 = 2 tanh(s0) in [-2, 2], a1 = sigmoid(s1)."""
    return np.stack([2 * np.tanh(states[:, 0]), 1 / (1 + np.exp(-2 * states[:, 1]))], 1)


def test_hg_dagger_trains_on_the_interventions_of_a_real_store(tmp_path):
    """The robot's own rows (random actions) and a person's (the expert's) in one Zarr
    store; batches drawn by the learner's sampler with intervention_ratio 0.5. HG-DAgger,
    weighting rows by who drove them, learns the person's policy; BC on every row does not."""
    rng = np.random.default_rng(0)
    writer = ReplayWriter.create(tmp_path / 'store', transition_schema(STORE_ROBOT),
                                 {'robots': {'arm0': STORE_ROBOT}})
    states = rng.normal(size=(600, 4)).astype(np.float32)
    took = np.arange(600) % 4 == 0  # a person drove every fourth step
    actions = np.where(took[:, None], store_expert(states),
                       np.stack([rng.uniform(-2, 2, 600), rng.uniform(0, 1, 600)], 1))
    writer.append([store_record(writer, {
        'robot_id': 'arm0', 'seq': i + 1, 'obs/state': states[i], 'next_obs/state': states[i],
        'action': actions[i].astype(np.float32), 'reward': np.float32(0), 'terminated': False,
        'truncated': False, 'episode_id': i // 50, 'step': i % 50,
        'intervention': bool(took[i])}) for i in range(600)])
    writer.commit()
    cfg = TrainerConfig(sac=SACConfig(batch_size=64, learning_starts=0), intervention_ratio=0.5,
                        refresh_every_s=0.0)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
    trainer.sampler.samplers['interventions'].sample(1)  # waits until their block is cached
    person = trainer.sampler.names.index('interventions')
    algos = {name: HGDAgger(4, 2, HGDAggerConfig(actor=SMALL, lr=3e-3, pretrain_updates=0),
                            seed=0) for name in ('hg_dagger', 'bc_on_every_row')}
    shares = []
    for _ in range(200):
        rows = trainer.sampler.sample()
        batch = trainer.batch(rows)
        flags = torch.as_tensor(rows['source'] == person, dtype=torch.float32)
        shares.append(algos['hg_dagger'].update({**batch, 'intervention': flags})[
            'train/intervention_share'])
        algos['bc_on_every_row'].update({**batch, 'intervention': torch.ones(64)})
    trainer.close()
    test_states = rng.normal(size=(200, 4)).astype(np.float32)
    wanted = torch.as_tensor(trainer.space.to_unit(store_expert(test_states),
                                                   np.zeros(200, np.int64)), dtype=torch.float32)
    errors = {}
    for name, algo in algos.items():
        with torch.no_grad():
            errors[name] = float(((algo.actor(torch.as_tensor(test_states))[2] - wanted) ** 2)
                                 .mean())
    print(f'mean squared error to the person: {errors}; intervention share {np.mean(shares)}')
    assert np.mean(shares) == pytest.approx(0.5, abs=0.02)
    assert errors['hg_dagger'] < 0.03 and errors['bc_on_every_row'] > 3 * errors['hg_dagger']
