"""Frame stacking of image actors (``actor.encoder.frame_stack``): the learner's sampler
stacks each camera's last k frames from the store's rows (one frame per row on disk), the
policy's InferenceEngine stacks them from the observations, and the two agree; the encoder
takes 3k channels; a pretrained single-frame trunk is inflated; bad values are refused.

The learning check is a velocity task: a dot moves sideways between the two steps of an
episode and the action must be its velocity. Its position at the second step is drawn
independently of the velocity, so one frame says nothing about it; two frames do. CNN-SAC
with frame_stack 2, trained through a real store and the Trainer and served by the
InferenceEngine, matches the velocity; with frame_stack 1 it cannot.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from store_rows import store_record

from realrl_common.config import ConfigError, build_config
from realrl_learner.trainer import Trainer, TrainerConfig
from realrl_policy.encoders import EncoderConfig, ImageEncoder, load_trunk, save_trunk
from realrl_policy.inference import InferenceEngine
from realrl_replay import ReplayReader, ReplayWriter, WriterConfig
from realrl_replay.config import StoreConfig
from realrl_replay.frame_stack import preceding_rows
from realrl_replay.sampler import Sampler
from realrl_replay.sampler_config import SamplerConfig
from realrl_replay.transition_schema import transition_schema

torch.set_num_threads(1)
SIZE = 8
DESC = {'robot_id': 'a', 'state_dim': 1, 'action_dim': 1, 'action_low': [-1.0],
        'action_high': [1.0], 'cameras': ['front'], 'image_size': [SIZE, SIZE]}
ROBOTS = {'a': DESC, 'b': {**DESC, 'robot_id': 'b'}}


def tagged(robot: int, episode: int, step: int) -> np.ndarray:
    """A frame that says whose it is: pixel (0, 0) holds (robot, episode, step)."""
    frame = np.full((SIZE, SIZE, 3), 7, np.uint8)
    frame[0, 0] = (robot, episode, step)
    return frame


def write_episodes(path, plan, lengths, chunk_rows: int = 8):
    """A real store of two robots' interleaved episodes of tagged frames; plan says which
    robot commits each row, lengths[robot] the lengths of its episodes in order. Returns
    (robot, episode, step) of every row."""
    writer = ReplayWriter.create(
        path, transition_schema(DESC), {'robots': ROBOTS},
        StoreConfig(min_chunk_rows=chunk_rows, max_chunk_rows=chunk_rows),
        WriterConfig(fsync=False))
    at = {r: [0, 0] for r in (0, 1)}  # robot -> [episode, step]
    rows, records = [], []
    for seq, r in enumerate(plan):
        episode, step = at[r]
        rows.append((r, episode, step))
        last = step + 1 == lengths[r][episode]
        records.append(store_record(writer, {
            'robot_id': 'ab'[r], 'seq': seq, 'obs/state': np.zeros(1, np.float32),
            'next_obs/state': np.zeros(1, np.float32), 'action': np.zeros(1, np.float32),
            'reward': np.float32(0), 'terminated': last, 'truncated': False,
            'episode_id': episode, 'step': step, 'obs/image_front': tagged(r, episode, step),
            'next_obs/image_front': tagged(r, episode, step + 1)}))
        at[r] = [episode + 1, 0] if last else [episode, step + 1]
    writer.append(records)
    writer.commit()
    writer.close()
    return rows


def expected_stack(row, k: int, shift: int = 0) -> np.ndarray:
    """The stack of (robot, episode, step) + shift: frames of steps max(0, s - k + 1) .. s."""
    r, e, s = row
    s += shift
    return np.concatenate([tagged(r, e, max(0, t)) for t in range(s - k + 1, s + 1)], axis=-1)


PLAN = [0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0]
LENGTHS = {0: [1, 4, 2, 6, 1], 1: [3, 9, 3, 1, 10]}  # robot 0: 14 rows, robot 1: 15


def test_preceding_rows_stay_in_the_rows_robot_and_episode(tmp_path):
    rows = write_episodes(tmp_path / 's', PLAN, LENGTHS)
    got = preceding_rows(ReplayReader(tmp_path / 's'), np.arange(len(PLAN)), 3)
    for i, taken in enumerate(got):
        r, e, s = rows[i]
        assert taken[-1] == i
        assert [rows[j] for j in taken] == [(r, e, max(0, t)) for t in (s - 2, s - 1, s)], i


def test_sampled_stacks_are_the_stored_frames_of_the_episode(tmp_path):
    """Across episode boundaries, robots interleaved, blocks of 8 rows; a window of the newest
    rows makes the cache drop the oldest blocks, so stacks also read rows from the store."""
    rows = write_episodes(tmp_path / 's', PLAN, LENGTHS)
    k = 4
    fields = ('obs/image_front', 'next_obs/image_front')
    seen = set()
    for window in (None, 12):
        with Sampler(tmp_path / 's', SamplerConfig(batch_size=64, fields=fields, seed=1,
                                                   frame_stack=k, window=window,
                                                   cache_bytes=1 << 20)) as sampler:
            for _ in range(4):
                batch = sampler.sample()
                assert batch['obs/image_front'].shape == (64, SIZE, SIZE, 3 * k)
                for i, obs, nxt in zip(batch['index'], batch['obs/image_front'],
                                       batch['next_obs/image_front']):
                    np.testing.assert_array_equal(obs, expected_stack(rows[i], k))
                    np.testing.assert_array_equal(nxt, expected_stack(rows[i], k, shift=1))
                    seen.add(int(i))
    assert seen == set(range(len(PLAN)))


def test_frame_stack_1_samples_the_rows_own_frames(tmp_path):
    rows = write_episodes(tmp_path / 's', PLAN, LENGTHS)
    with Sampler(tmp_path / 's', SamplerConfig(batch_size=16, seed=0)) as sampler:
        batch = sampler.sample()
    for i, obs in zip(batch['index'], batch['obs/image_front']):
        np.testing.assert_array_equal(obs, tagged(*rows[i]))


def test_the_policy_stacks_what_the_learner_samples(tmp_path):
    """The observations of the same episodes (each robot's in order, one re-sent) go through
    the InferenceEngine serving a frame_stack 3 actor; what the actor is given equals the
    sampler's stack of the same row."""
    from realrl_policy.cnn_actor import CNNActor
    from realrl_policy.models import ActorConfig
    from realrl_policy.weights_blob import pack_actor
    rows = write_episodes(tmp_path / 's', PLAN, LENGTHS)
    cfg = ActorConfig(type='cnn', hidden_sizes=(8,), encoder=EncoderConfig(
        cameras=('front',), channels=4, blocks=1, feature_dim=4, frame_stack=3))
    engine = InferenceEngine()
    for rid in ('a', 'b'):
        engine.add_robot(rid, 1, [-1.0], [1.0])
    assert engine.load(1, pack_actor(CNNActor(cfg, 1, 1))) == ''
    given = []
    act = engine.actor.act
    engine.actor.act = lambda obs, deterministic=False: (given.append(obs), act(obs))[1]
    for i, (r, e, s) in enumerate(rows):
        engine.act('ab'[r], np.zeros(1, np.float32), {'front': tagged(r, e, s)}, e, s)
        if i == 5:  # the driver re-sends an observation that got no action: the same stack
            engine.act('ab'[r], np.zeros(1, np.float32), {'front': tagged(r, e, s)}, e, s)
            again = given.pop()
            np.testing.assert_array_equal(again['image_front'], given[-1]['image_front'])
    with Sampler(tmp_path / 's', SamplerConfig(batch_size=256, seed=0, frame_stack=3,
                                               fields=('obs/image_front',))) as sampler:
        batch = sampler.sample()
    sampled = dict(zip(batch['index'].tolist(), batch['obs/image_front']))
    assert set(sampled) == set(range(len(rows)))
    for i, obs in enumerate(given):
        assert obs['image_front'].shape == (SIZE, SIZE, 9)
        np.testing.assert_array_equal(obs['image_front'], sampled[i], err_msg=str(rows[i]))
    with pytest.raises(ValueError, match="give act\\(\\) the observation's episode_id"):
        engine.act('a', np.zeros(1, np.float32), {'front': tagged(0, 0, 0)})


def test_the_encoder_takes_3k_channels():
    plain = ImageEncoder(EncoderConfig(cameras=('front',), channels=8, blocks=1))
    three = ImageEncoder(EncoderConfig(cameras=('front',), channels=8, blocks=1, frame_stack=3))
    assert three.trunk[0].in_channels == 9 and plain.trunk[0].in_channels == 3
    three.eval()
    assert three({'image_front': torch.zeros(2, SIZE, SIZE, 9, dtype=torch.uint8)}).shape == (
        2, 64)
    with pytest.raises(ValueError, match='takes 9 channels'):
        three({'image_front': torch.zeros(2, SIZE, SIZE, 3, dtype=torch.uint8)})


def test_a_blob_from_before_frame_stacking_serves_one_frame():
    """A header without encoder.frame_stack (learners before it) is a single-frame actor."""
    import json
    import struct

    from realrl_policy.cnn_actor import CNNActor
    from realrl_policy.models import ActorConfig
    from realrl_policy.weights_blob import MAGIC, pack_actor, unpack_actor
    actor = CNNActor(ActorConfig(type='cnn', hidden_sizes=(8,), encoder=EncoderConfig(
        cameras=('front',), channels=4, blocks=1, feature_dim=4)), 1, 1).eval()
    blob = pack_actor(actor)
    (n,) = struct.unpack_from('<I', blob, len(MAGIC))
    header = json.loads(blob[len(MAGIC) + 4:len(MAGIC) + 4 + n])
    del header['actor']['encoder']['frame_stack']
    old = json.dumps(header).encode()
    served = unpack_actor(MAGIC + struct.pack('<I', len(old)) + old
                          + blob[len(MAGIC) + 4 + n:])
    assert served.cfg == actor.cfg and served.encoder.in_channels == 3
    obs = {'state': np.zeros(1, np.float32), 'image_front': tagged(0, 1, 2)}
    np.testing.assert_array_equal(served.act(obs, True), actor.act(obs, True))


def test_a_single_frame_trunk_is_inflated_and_another_stack_is_refused(tmp_path):
    single = ImageEncoder(EncoderConfig(cameras=('front',), channels=8, blocks=1))
    save_trunk(single, tmp_path / 'one.pt')
    stacked = ImageEncoder(EncoderConfig(cameras=('front',), channels=8, blocks=1,
                                         frame_stack=3))
    load_trunk(stacked, tmp_path / 'one.pt')
    frame = torch.randint(0, 255, (2, 3, SIZE, SIZE)).float() / 255
    # a still scene: the inflated trunk gives what the single-frame trunk gave one frame
    torch.testing.assert_close(stacked.trunk(frame.repeat(1, 3, 1, 1)), single.trunk(frame))
    save_trunk(stacked, tmp_path / 'three.pt')
    two = ImageEncoder(EncoderConfig(cameras=('front',), channels=8, blocks=1, frame_stack=2))
    with pytest.raises(ValueError, match='trunk for frame_stack 3.*frame_stack 2'):
        load_trunk(two, tmp_path / 'three.pt')


@pytest.mark.parametrize('value', [0, -1, 1.5, True])
def test_a_bad_frame_stack_is_an_error_naming_the_field(value):
    with pytest.raises(ValueError, match='actor.encoder.frame_stack must be an integer >= 1'):
        EncoderConfig(cameras=('front',), frame_stack=value)


def test_the_learner_config_refuses_a_bad_frame_stack():
    algorithm = {'type': 'sac', 'actor': {'type': 'cnn', 'encoder': {
        'cameras': ['front'], 'frame_stack': 0}}}
    with pytest.raises(ConfigError,
                       match=r'actor.encoder.frame_stack must be an integer >= 1 .*got 0'):
        build_config(TrainerConfig, {'algorithm': algorithm})
    algorithm['actor']['encoder']['frame_stack'] = 'two'
    with pytest.raises(ConfigError, match='actor.encoder.frame_stack: expected an integer'):
        build_config(TrainerConfig, {'algorithm': algorithm})


# -- a task that needs motion: CNN-SAC learns it with two frames, not with one ---------------
def dot(x: int, y: int) -> np.ndarray:
    frame = np.full((SIZE, SIZE, 3), 20, np.uint8)
    frame[y:y + 2, x:x + 2] = (250, 200, 50)
    return frame


def velocity_episode(rng):
    """(frames of steps 0 and 1, the velocity as an action: +-0.6): the dot moves 2 pixels
    left or right; its position at step 1 is drawn independently of the direction."""
    v = int(rng.choice([-2, 2]))
    x1, y = int(rng.integers(2, SIZE - 3)), int(rng.integers(0, SIZE - 1))
    return [dot(x1 - v, y), dot(x1, y)], 0.3 * v


def velocity_store(path, episodes: int, rng):
    writer = ReplayWriter.create(path, transition_schema(DESC), {'robots': {'a': DESC}},
                                 config=WriterConfig(fsync=False))
    records, zero = [], np.zeros(1, np.float32)
    for e in range(episodes):
        frames, v = velocity_episode(rng)
        for s in (0, 1):
            action = rng.uniform(-1, 1, 1).astype(np.float32)
            records.append(store_record(writer, {
                'robot_id': 'a', 'seq': len(records), 'obs/state': zero, 'next_obs/state': zero,
                'obs/image_front': frames[s], 'next_obs/image_front': frames[min(s + 1, 1)],
                'action': action, 'reward': np.float32(-abs(action[0] - v)),
                'terminated': s == 1, 'truncated': False, 'episode_id': e, 'step': s}))
    writer.append(records)
    writer.commit()
    writer.close()


@pytest.mark.parametrize('k, solves', [(2, True), (1, False)])
def test_cnn_sac_needs_two_frames_to_match_a_velocity(tmp_path, k, solves):
    rng = np.random.default_rng(0)
    velocity_store(tmp_path / 'store', 512, rng)
    actor = {'type': 'cnn', 'hidden_sizes': [32, 32], 'encoder': {
        'cameras': ['front'], 'channels': 8, 'blocks': 1, 'feature_dim': 16, 'shift_pad': 0,
        'frame_stack': k}}
    cfg = build_config(TrainerConfig, {'algorithm': {
        'type': 'sac', 'batch_size': 32, 'learning_starts': 0, 'updates_per_step': 1.0,
        'gamma': 0.5, 'critic_hidden_sizes': [32, 32], 'init_temperature': 0.01,
        'actor_lr': 3e-3, 'critic_lr': 3e-3, 'actor': actor}, 'refresh_every_s': 0.0,
        'seed': 0})
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
    try:
        for _ in range(200):
            assert trainer.step()
        engine = InferenceEngine(deterministic=True)
        engine.add_robot('a', 1, [-1.0], [1.0], DESC)
        assert engine.load(*trainer.next_weights(0.0)) == ''
    finally:
        trainer.close()
    errors = []
    for e in range(60):
        frames, v = velocity_episode(rng)
        engine.act('a', np.zeros(1, np.float32), {'front': frames[0]}, e, 0)
        action, _ = engine.act('a', np.zeros(1, np.float32), {'front': frames[1]}, e, 1)
        errors.append(abs(float(action[0]) - v))
    error = float(np.mean(errors))
    # one frame says nothing of the direction: 0.6 at best (0.59 after 200 updates); two
    # frames: 0.05 (0.09 with seed 3)
    assert (error < 0.3) == solves, f'frame_stack {k}: mean error {error:.3f}'


def test_a_checkpoint_of_another_frame_stack_is_refused_on_resume(tmp_path):
    velocity_store(tmp_path / 'store', 16, np.random.default_rng(0))

    def trainer(k: int) -> Trainer:
        return Trainer(build_config(TrainerConfig, {'algorithm': {
            'type': 'sac', 'batch_size': 8, 'learning_starts': 0, 'critic_hidden_sizes': [8],
            'actor': {'type': 'cnn', 'hidden_sizes': [8], 'encoder': {
                'cameras': ['front'], 'channels': 4, 'blocks': 1, 'feature_dim': 4,
                'frame_stack': k}}}, 'refresh_every_s': 0.0}),
            ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')

    first = trainer(1)
    try:
        assert first.step()
        first.save_checkpoint()
    finally:
        first.close()
    again = trainer(2)
    try:
        with pytest.raises(ValueError, match='trained with algorithm.actor.encoder.frame_stack 1, '
                                             'the learner has 2'):
            again.load_latest()
    finally:
        again.close()
