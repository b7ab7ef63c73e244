"""The learner's Trainer with chunk and vision-language actors, on real replay stores: action
chunks read from the robot's following rows, bc/hg_dagger built from the graph YAML with a
'flow' or 'vla_tiny' actor, and weights the policy's InferenceEngine serves."""
import numpy as np
import pytest
import torch
import yaml

from realrl_common.config import ConfigError, build_config
from realrl_learner.node_config import LearnerNodeConfig
from realrl_learner.trainer import Trainer, TrainerConfig
from realrl_policy.actors.flow import FlowActorConfig
from realrl_policy.actors.vla_tiny import VLATinyConfig
from realrl_policy.chunk_inference import infer_chunk
from realrl_policy.inference import InferenceEngine
from realrl_replay.action_chunks import following_actions
from realrl_replay.reader import ReplayReader
from realrl_replay.transition_schema import transition_schema
from realrl_replay.writer import ReplayWriter

SIZE = 16
DESC = {'robot_id': 'arm0', 'state_dim': 3, 'action_dim': 2, 'action_low': [-1.0, -1.0],
        'action_high': [1.0, 1.0], 'cameras': ['wrist'], 'image_size': [SIZE, SIZE]}
WORDS = {'go left': np.array([-0.6, 0.3], np.float32),
         'go right': np.array([0.6, -0.3], np.float32)}


def text(s: str) -> np.ndarray:
    out = np.zeros(256, np.uint8)
    out[:len(s)] = np.frombuffer(s.encode(), np.uint8)
    return out


def record(robot: str, seq: int, episode: int, step: int, action, instruction: str = ''):
    frame = np.full((SIZE, SIZE, 3), 40 * (step % 5), np.uint8)
    return {'robot_id': robot, 'seq': seq, 'obs/state': np.full(3, step / 10, np.float32),
            'next_obs/state': np.zeros(3, np.float32), 'action': np.asarray(action, np.float32),
            'reward': np.float32(0), 'terminated': False, 'truncated': False,
            'episode_id': episode, 'step': step, 'policy_version': 0, 'intervention': True,
            'stamp_ns': 0, 'instruction': text(instruction), 'obs/image_wrist': frame,
            'next_obs/image_wrist': frame}


def test_chunks_follow_the_rows_own_robot_and_stop_at_its_episode_end(tmp_path):
    """Two robots interleaved unevenly; action = (robot, 10 * episode + step) says which row
    filled each slot of a chunk."""
    writer = ReplayWriter.create(tmp_path / 's', transition_schema(DESC), {'robots': {
        'arm0': DESC, 'arm1': {**DESC, 'robot_id': 'arm1'}}})
    seqs, steps, records = {'arm0': 0, 'arm1': 0}, {'arm0': 0, 'arm1': 0}, []
    # arm0: episode 0 of 4 steps, then episode 1 of 3; arm1 in bursts between them
    plan = ['arm0', 'arm1', 'arm1', 'arm1', 'arm1', 'arm1', 'arm0', 'arm0', 'arm1', 'arm0',
            'arm0', 'arm0', 'arm1', 'arm0']
    for robot in plan:
        episode = 0 if robot == 'arm1' or seqs['arm0'] < 4 else 1
        if robot == 'arm0' and seqs['arm0'] == 4:
            steps['arm0'] = 0
        seqs[robot] += 1
        records.append(record(robot, seqs[robot], episode, steps[robot],
                              [float(robot == 'arm1'), 10 * episode + steps[robot]]))
        steps[robot] += 1
    writer.append(records)
    writer.commit()
    reader = ReplayReader(tmp_path / 's')
    got = following_actions(reader, np.arange(len(plan)), 3)
    assert got.shape == (len(plan), 3, 2)
    # row 0: arm0's step 0; its next rows are 6 and 7 (steps 1 and 2), past five of arm1's
    np.testing.assert_array_equal(got[0, :, 1], [0, 1, 2])
    assert (got[0, :, 0] == 0).all()
    # row 7: arm0's step 2; step 3 is row 9, then the episode ends: step 3 repeated
    np.testing.assert_array_equal(got[7, :, 1], [2, 3, 3])
    # row 10: arm0's episode 1, step 0 -> 1, 2 (rows 11, 13)
    np.testing.assert_array_equal(got[10, :, 1], [10, 11, 12])
    # row 13: the newest row: nothing after it yet
    np.testing.assert_array_equal(got[13, :, 1], [12, 12, 12])
    # arm1's rows never borrow arm0's actions
    arm1 = [i for i, r in enumerate(plan) if r == 'arm1']
    assert (got[arm1, :, 0] == 1).all()
    np.testing.assert_array_equal(got[arm1[0], :, 1], [0, 1, 2])
    writer.close()


def vla_learner_yaml(store: str) -> str:
    return f"""
store_path: {store}
refresh_every_s: 0.0
algorithm:
  type: bc
  batch_size: 16
  lr: 0.003
  updates_per_step: 10.0
  actor:
    type: vla_tiny
    chunk: 3
    head: regression
    image_shape: [3, {SIZE}, {SIZE}]
    hidden_sizes: [64]
    embed_dim: 32
    max_tokens: 16
"""


def test_bc_with_a_vla_actor_from_the_graph_yaml_trains_and_its_weights_serve_a_chunk(
        tmp_path):
    writer = ReplayWriter.create(tmp_path / 's', transition_schema(DESC),
                                 {'robots': {'arm0': DESC}})
    records, seq = [], 0
    for episode, words in enumerate(['go left', 'go right'] * 3):
        for step in range(6):  # the action ramps along the episode, its sign by instruction
            seq += 1
            records.append(record('arm0', seq, episode, step, WORDS[words] * (step + 1) / 6,
                                  words))
    writer.append(records)
    writer.commit()
    cfg = build_config(LearnerNodeConfig, yaml.safe_load(vla_learner_yaml(str(tmp_path / 's'))))
    assert isinstance(cfg.algorithm.actor, VLATinyConfig) and cfg.algorithm.actor.chunk == 3
    trainer = Trainer(cfg, ReplayReader(tmp_path / 's'), tmp_path / 'ckpt')
    assert trainer.algorithm.batch_keys == ('obs', 'image', 'instruction', 'action_chunk')

    rows = trainer.sampler.sample(32)
    batch = trainer.batch(rows)
    assert batch['image'].shape == (32, SIZE, SIZE, 3) and batch['image'].dtype == torch.uint8
    assert batch['instruction'].shape == (32, 256)
    for b, i in enumerate(rows['index']):  # store row i is episode i // 6, step i % 6
        steps = np.minimum(np.arange(i % 6, i % 6 + 3), 5)
        want = WORDS[['go left', 'go right'][(i // 6) % 2]][None] * (steps[:, None] + 1) / 6
        np.testing.assert_allclose(batch['action_chunk'][b].numpy(), want, atol=1e-6)
        assert bytes(batch['instruction'][b, :8].numpy()).rstrip(b'\0').decode() in WORDS

    losses = []
    for _ in range(120):
        assert trainer.step()
        losses.append(trainer.last_metrics['train/bc_loss'])
    assert np.mean(losses[-10:]) < 0.2 * np.mean(losses[:10])

    version, blob = trainer.next_weights(now=1e9)
    engine = InferenceEngine(deterministic=True)
    engine.add_robot('arm0', 3, DESC['action_low'], DESC['action_high'], DESC)
    assert engine.load(version, blob) == ''
    state = np.zeros(3, np.float32)  # step 0 of an episode
    frame = {'wrist': np.zeros((SIZE, SIZE, 3), np.uint8)}
    rng = np.random.default_rng(0)
    chunks = {w: infer_chunk(engine, 'arm0', state, rng, instruction=w, images=frame)
              for w in WORDS}
    for words, (chunk, served_version) in chunks.items():
        assert served_version == 1 and chunk.shape == (3, 2)
        want = WORDS[words][None] * np.arange(1, 4)[:, None] / 6  # steps 0, 1, 2
        assert np.abs(chunk - want).max() < 0.15, (words, chunk, want)
    trainer.close()
    writer.close()


def test_hg_dagger_takes_a_flow_actor_and_bad_actor_fields_are_named():
    cfg = TrainerConfig(algorithm={'type': 'hg_dagger', 'actor': {'type': 'flow', 'chunk': 4}})
    assert isinstance(cfg.algorithm.actor, FlowActorConfig) and cfg.algorithm.actor.chunk == 4
    with pytest.raises(ConfigError, match=r'algorithm\.actor\.chunkk'):
        TrainerConfig(algorithm={'type': 'bc', 'actor': {'type': 'vla_tiny', 'chunkk': 4}})
    with pytest.raises(ConfigError, match=r'algorithm: batch_size must be >= 1'):
        TrainerConfig(algorithm={'type': 'bc', 'batch_size': 0,
                                 'actor': {'type': 'vla_tiny'}})


def test_hg_dagger_chunks_come_from_each_rows_own_store_in_a_mixed_batch(tmp_path):
    """Demonstrations in one store, this run in another, with the same row numbers: every
    row's chunk holds its own store's following actions (action[1] names the store)."""
    desc = {**DESC, 'cameras': [], 'image_size': [0, 0]}
    for name, tag, flagged in (('run', 0.5, [False, True]), ('demo', -0.5, [True, True])):
        writer = ReplayWriter.create(tmp_path / name, transition_schema(desc),
                                     {'robots': {'arm0': desc}})
        rows = []
        for i in range(40):
            r = record('arm0', i + 1, i // 8, i % 8, [(i % 8) / 10, tag])
            r['intervention'] = flagged[(i // 4) % 2]
            rows.append({k: v for k, v in r.items() if 'image' not in k})
        writer.append(rows)
        writer.commit()
        writer.close()
    cfg = TrainerConfig(algorithm={'type': 'hg_dagger', 'batch_size': 64, 'pretrain_updates': 0,
                                   'actor': {'type': 'flow', 'chunk': 3}},
                        demo_stores=(str(tmp_path / 'demo'),), demo_ratio=0.5,
                        intervention_ratio=0.25, refresh_every_s=0.0)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'run'), tmp_path / 'ckpt')
    rows = trainer.sampler.sample()
    batch = trainer.batch(rows)
    chunk = batch['action_chunk'].numpy()
    assert chunk.shape == (64, 3, 2)
    for b, i in enumerate(rows['index']):
        tag = chunk[b, 0, 1]
        assert tag in (0.5, -0.5) and (chunk[b, :, 1] == tag).all()  # one store per chunk
        steps = np.minimum(np.arange(i % 8, i % 8 + 3), 7)
        np.testing.assert_allclose(chunk[b, :, 0], steps / 10, atol=1e-6)
    assert 0 < (chunk[:, 0, 1] == -0.5).sum() < 64  # both stores are in the batch
    assert trainer.step() and trainer.algorithm.updates == 1
    trainer.close()
