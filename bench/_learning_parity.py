"""Learning parity for bench/replay_sample.py: the same SAC run fed from a durable store
through the learner's cache-aware sampler, or from everything in memory.

One process, synchronous, as bench/_reach_learning_check.py: the simulated reach arm
(MujocoArmSim 'reach_arm', 'ee_delta' actions, ReachReward dense, episodes of at most 50
steps, success ends them). Both runs build the learner's ``Trainer`` (same SACConfig, seed,
pacing: updates_per_step per stored transition after learning_starts) on a store made as
the replay node makes it (its schema and metadata, fsync on). They differ only in where the
batches come from:

- 'store': each transition is appended to the store's ``ReplayWriter`` and committed
  (pipelined, commit_async whenever none is in flight); the Trainer samples through the
  ``Sampler`` the learner builds (make_samplers' settings: the learner's fields, seed,
  refresh every 0.25 s) with ``cache_bytes`` = ``cache_fraction`` of the final store's rows
  (the Trainer's own config refuses caches under 1 MiB, so the Sampler is built here with
  the same settings). The store uses 32-row chunks (StoreConfig.max_chunk_rows=32), the
  block size of a camera store, so the cache holds blocks as it would there;
- 'memory': each transition is copied into numpy arrays and batches are uniform over them.

The policy is evaluated deterministically on the same 20 episodes (fixed seeds) in both
runs, before training and at the end: success rate and mean return (minus the distance
to the target per step, so negative; episodes end at success).

What it leaves out: images (a state task, so the learner is not bound by decoding); several
robots; the learner and robots running in parallel (here the robot waits for the updates);
a harder task (SAC solves this reach in ~1,400 steps, so parity is measured near
convergence, where a sampler that sees fewer distinct rows has had time to catch up);
run-to-run noise beyond the seeds given (the store run's batches also depend on when the
loader thread finished a block, and its updates on when commits became visible).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig, MujocoArmSim
from realrl_learner.sac import SACConfig
from realrl_learner.trainer import EMBODIMENT, FIELDS, Trainer, TrainerConfig
from realrl_replay import ReplayReader, ReplayWriter, StoreConfig, WriterConfig
from realrl_replay.sampler import Sampler
from realrl_replay.sampler_config import SamplerConfig
from realrl_replay.transition_schema import store_schema
from realrl_reward.reach_reward import ReachReward, ReachRewardConfig

EPISODE_STEPS = 50
EVAL_EPISODES = 20
ROBOT = 'arm0'


def description(sim: MujocoArmSim) -> dict:
    """The robot description the driver would publish for this arm."""
    return {'robot_id': ROBOT, 'kind': sim.kind, 'control_hz': sim.control_hz,
            'state_dim': sim.state_dim,
            'state_layout': {k: [a, b] for k, (a, b) in sim.observation_layout.items()},
            'action_dim': sim.action_dim, 'action_low': sim.action_low.tolist(),
            'action_high': sim.action_high.tolist(), 'action_units': 'm', 'cameras': [],
            'image_size': [0, 0], 'episode_max_steps': EPISODE_STEPS, 'capabilities': []}


class MemoryRows:
    """Everything in memory: the learner's fields copied into numpy arrays, uniform batches
    (the interface of the Sampler that the Trainer uses)."""

    def __init__(self, schema: dict, capacity: int, batch: int, seed: int):
        names = FIELDS + (EMBODIMENT,)
        self.columns = {n: np.zeros((capacity, *schema[n][0]), schema[n][1]) for n in names}
        self.count, self.batch = 0, batch
        self.rng = np.random.default_rng(seed)

    def add(self, record: dict) -> None:
        for name, column in self.columns.items():
            column[self.count] = record[name]
        self.count += 1

    def refresh(self) -> int:
        return self.count

    def sample(self) -> dict:
        idx = self.rng.integers(0, self.count, self.batch)
        return {k: v[idx] for k, v in self.columns.items()}

    def close(self) -> None:
        pass


def learner_sampler(trainer: Trainer, reader: ReplayReader, cache_bytes: int) -> Sampler:
    """The Sampler make_samplers builds for the online rows, with a smaller cache."""
    cfg = trainer.cfg
    return Sampler(reader, SamplerConfig(
        batch_size=cfg.sac.batch_size, cache_bytes=cache_bytes, fields=FIELDS + (EMBODIMENT,),
        seed=cfg.seed, refresh_interval_s=cfg.refresh_every_s))


def row_bytes(reader: ReplayReader) -> int:
    """Bytes of one row in the cache: the learner's fields plus those the Sampler adds."""
    names = set(FIELDS) | {EMBODIMENT, 'robot_id', 'episode_id'}
    return sum(f.row_bytes for f in reader.schema.fields if f.name in names)


def run(mode: str, seed: int, steps: int, cache_fraction: float, work: Path,
        sac: SACConfig) -> dict:
    """One training run of ``steps`` env steps; mode 'store' or 'memory'."""
    torch.set_num_threads(1)
    sim = MujocoArmSim(ArmSimConfig(), seed=seed)
    reward_fn = ReachReward(ReachRewardConfig(mode='dense'))
    desc = description(sim)
    schema, space = store_schema({ROBOT: desc})
    root = work / f'{mode}_{seed}'
    writer = ReplayWriter.create(root / 'replay', schema, {
        'robots': {ROBOT: desc}, 'space': space.to_json(), 'source': 'online'},
        StoreConfig(max_chunk_rows=32), WriterConfig(fsync=True))
    reader = ReplayReader(root / 'replay')
    trainer = Trainer(TrainerConfig(sac=sac, seed=seed), reader, root / 'checkpoints')
    trainer.close()
    cache_bytes = int(cache_fraction * steps * row_bytes(reader))
    if mode == 'store':
        source = learner_sampler(trainer, reader, cache_bytes)
    else:
        source = MemoryRows(schema, steps, sac.batch_size, seed)
    trainer.online = trainer.sampler = source
    initial = evaluate(trainer, space)
    rng = np.random.default_rng(seed + 1000)
    layout = sim.observation_layout
    state, episode, ep_len, successes = sim.reset(seed), 0, 0, []
    start = time.perf_counter()
    try:
        for t in range(steps):
            padded = space.pad_state(0, state)
            if t < sac.learning_starts:
                action = rng.uniform(-1, 1, sim.action_dim).astype(np.float32)
            else:
                action = trainer.sac.actor.act(space.actor_obs(padded[None], [0])[0])
            next_state = sim.apply(action)
            reward, success = reward_fn.label(next_state, layout)
            ep_len += 1
            record = {'robot_id': ROBOT, 'seq': t + 1, 'obs/state': padded,
                      'next_obs/state': space.pad_state(0, next_state),
                      'action': space.pad_action(0, action), 'reward': np.float32(reward),
                      'terminated': bool(success),
                      'truncated': not success and ep_len >= EPISODE_STEPS,
                      'episode_id': episode, 'step': ep_len - 1, 'policy_version': 0,
                      'intervention': False, 'stamp_ns': time.time_ns(),
                      'instruction': np.zeros(256, np.uint8), EMBODIMENT: np.int16(0)}
            if mode == 'store':
                writer.append([record])
                if not writer.committing:
                    writer.commit_async()
            else:
                source.add(record)
            while trainer.step():
                pass
            state = next_state
            if success or ep_len >= EPISODE_STEPS:
                successes.append(bool(success))
                state, episode, ep_len = sim.reset(), episode + 1, 0
        train_s = time.perf_counter() - start
        evaluation = evaluate(trainer, space)
        stats = dict(getattr(source, 'stats', {}))
    finally:
        source.close()
        writer.close()
        sim.close()
    return {'mode': mode, 'seed': seed, 'updates': trainer.sac.updates,
            'train_success_last20': float(np.mean(successes[-20:])) if successes else 0.0,
            'train_s': round(train_s, 1), 'cache_bytes': cache_bytes if mode == 'store' else None,
            'sampler_stats': stats, 'initial_return': initial['eval_return'], **evaluation}


def evaluate(trainer: Trainer, space) -> dict:
    """The deterministic policy on EVAL_EPISODES fixed episodes (the same in every run)."""
    sim = MujocoArmSim(ArmSimConfig(), seed=0)
    reward_fn = ReachReward(ReachRewardConfig(mode='dense'))
    returns, successes = [], []
    for i in range(EVAL_EPISODES):
        state, total, success = sim.reset(100_000 + i), 0.0, False
        for _ in range(EPISODE_STEPS):
            obs = space.actor_obs(space.pad_state(0, state)[None], [0])[0]
            state = sim.apply(trainer.sac.actor.act(obs, deterministic=True))
            reward, success = reward_fn.label(state, sim.observation_layout)
            total += reward
            if success:
                break
        returns.append(total)
        successes.append(success)
    sim.close()
    return {'eval_success': float(np.mean(successes)), 'eval_return': float(np.mean(returns))}
