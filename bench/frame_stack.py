"""What frame stacking (``actor.encoder.frame_stack``) costs the learner and the policy.

A real replay store of MuJoCo-rendered frames (the reach arm, panda7, its 'front' camera at
64x64, random actions, episodes of 50 steps: the one-frame-per-row layout the replay node
writes) is sampled by the learner's Trainer with a CNN-SAC actor (channels 32, blocks 2,
stem_stride 2, batch 128), once with frame_stack K (default 3) and once with 1, the baseline,
the two trainers taking turns batch by batch in the same process, so they share the load.

- ``sample_ms``: median ms of one batch from the Sampler (k > 1: the search for the rows of
  the previous steps and the gather of their frames from the cache);
- ``update_ms``: median ms of one SAC update on that batch (the stem takes 3k channels);
- ``updates_per_s``: 1000 / (sample + update) medians, and ``ratio`` K over baseline;
- ``policy_act_ms``: median ms of one action from the policy's InferenceEngine for one
  observation (stacking included), K and baseline.

Left out: DDS and the nodes (the stacking happens inside the learner's and the policy's
processes; the messages carry one frame either way), the replay node's ingest (unchanged:
one frame per row), stores larger than the cache, and learning itself (see
test/unit/test_frame_stack.py for a task only k = 2 solves).

    .venv/bin/python bench/frame_stack.py [--quick] [--k 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import _util  # noqa: F401  (puts the workspace's packages on sys.path)
import numpy as np
import torch

from realrl_common.config import build_config
from realrl_common.transition import INSTRUCTION_BYTES
from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig, MujocoArmSim
from realrl_learner.trainer import Trainer, TrainerConfig
from realrl_policy.inference import InferenceEngine
from realrl_replay import ReplayReader, ReplayWriter, WriterConfig
from realrl_replay.transition_schema import transition_schema

SIZE, EPISODE_STEPS, BATCH = 64, 50, 128


def build_store(path: Path, rows: int) -> dict:
    """A store of `rows` rendered transitions; returns the robot's description."""
    sim = MujocoArmSim(ArmSimConfig(model='panda7', control_hz=10.0), seed=0)
    rng = np.random.default_rng(0)
    desc = {'robot_id': 'arm0', 'state_dim': sim.state_dim, 'action_dim': 3,
            'action_low': [-1.0] * 3, 'action_high': [1.0] * 3, 'cameras': ['front'],
            'image_size': [SIZE, SIZE]}
    writer = ReplayWriter.create(path, transition_schema(desc), {'robots': {'arm0': desc}},
                                 config=WriterConfig(fsync=False))
    try:
        records, state, frame = [], None, None
        for i in range(rows):
            episode, step = divmod(i, EPISODE_STEPS)
            if step == 0:
                state, frame = sim.reset(episode), sim.render('front', SIZE, SIZE)
            action = rng.uniform(-1, 1, 3).astype(np.float32)
            next_state = sim.apply(action)
            next_frame = sim.render('front', SIZE, SIZE)
            records.append({
                'robot_id': 'arm0', 'seq': i, 'obs/state': state, 'next_obs/state': next_state,
                'action': action, 'reward': np.float32(0), 'terminated': False,
                'truncated': step == EPISODE_STEPS - 1, 'episode_id': episode, 'step': step,
                'policy_version': 0, 'intervention': False, 'stamp_ns': 0,
                'instruction': np.zeros(INSTRUCTION_BYTES, np.uint8),
                'obs/image_front': frame, 'next_obs/image_front': next_frame})
            state, frame = next_state, next_frame
            if len(records) == 256:
                writer.append(records)
                writer.commit()
                records = []
        if records:
            writer.append(records)
            writer.commit()
    finally:
        writer.close()
        sim.close()
    return desc


def trainer(store: Path, ckpt: Path, k: int) -> Trainer:
    actor = {'type': 'cnn', 'encoder': {'cameras': ['front'], 'channels': 32, 'blocks': 2,
                                        'stem_stride': 2, 'frame_stack': k}}
    cfg = build_config(TrainerConfig, {'algorithm': {
        'type': 'sac', 'batch_size': BATCH, 'learning_starts': 0, 'actor': actor},
        'cache_bytes': 256 << 20, 'refresh_every_s': 1e9, 'seed': 0})
    t = Trainer(cfg, ReplayReader(store), ckpt)
    t.sampler.fill()
    return t


def policy_act_ms(blob: bytes, desc: dict, frames: list, n: int) -> float:
    engine = InferenceEngine(deterministic=True)
    engine.add_robot('arm0', desc['state_dim'], desc['action_low'], desc['action_high'], desc)
    assert engine.load(1, blob) == '', 'the policy refused the learner\'s weights'
    state, times = np.zeros(desc['state_dim'], np.float32), []
    for i in range(n):
        start = time.perf_counter()
        engine.act('arm0', state, {'front': frames[i % len(frames)]}, i // EPISODE_STEPS,
                   i % EPISODE_STEPS)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='small store, few batches')
    parser.add_argument('--k', type=int, default=3, help='frame_stack measured (baseline 1)')
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, batches, acts = (600, 10, 50) if args.quick else (3000, 40, 200)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        desc = build_store(tmp / 'store', rows)
        trainers = {k: trainer(tmp / 'store', tmp / f'ckpt{k}', k) for k in (1, args.k)}
        sample, update = {k: [] for k in trainers}, {k: [] for k in trainers}
        try:
            for _ in range(batches):
                for k, t in trainers.items():  # taking turns: the same load for both
                    start = time.perf_counter()
                    rows_k = t.sampler.sample()
                    sampled = time.perf_counter()
                    t.algorithm.update(t.batch(rows_k))
                    done = time.perf_counter()
                    sample[k].append((sampled - start) * 1e3)
                    update[k].append((done - sampled) * 1e3)
            blobs = {k: t.current_weights()[1] for k, t in trainers.items()}
        finally:
            for t in trainers.values():
                t.close()
        frames = list(ReplayReader(tmp / 'store').read_range(0, EPISODE_STEPS,
                                                             ['obs/image_front'])
                      ['obs/image_front'])
    med = {name: {k: round(statistics.median(v), 2) for k, v in d.items()}
           for name, d in (('sample_ms', sample), ('update_ms', update))}
    ups = {k: round(1e3 / (med['sample_ms'][k] + med['update_ms'][k]), 2) for k in trainers}
    act = {k: round(policy_act_ms(blobs[k], desc, frames, acts), 3) for k in trainers}
    for k in trainers:
        print(f'frame_stack {k}: sample {med["sample_ms"][k]} ms, update '
              f'{med["update_ms"][k]} ms, {ups[k]} updates/s, policy act {act[k]} ms')
    print(json.dumps({'k': args.k, 'batch': BATCH, 'image': SIZE, 'rows': rows,
                      'sample_ms': med['sample_ms'], 'update_ms': med['update_ms'],
                      'updates_per_s': ups, 'ratio': round(ups[args.k] / ups[1], 3),
                      'policy_act_ms': act}))


if __name__ == '__main__':
    main()
