"""Image actors: the CNN encoder (random shift, pretrained trunk, gradients only from the
critics), the 'cnn' actor served by the policy's InferenceEngine with camera frames, and
CNN-SAC learning through a real replay store and the Trainer.

The learning check is a one-step reach: a point at a random position (the state) must move
onto a target drawn only in a 16x16 camera frame. SAC with the 'cnn' actor learns it from
stored random-action transitions; the same SAC with the state-only 'mlp' actor cannot see
the target and stays far off, so the encoder is what carries the position.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from store_rows import store_record

from realrl_learner.algorithms import ObservationSpec
from realrl_learner.sac import SAC, SACConfig
from realrl_learner.trainer import Trainer, TrainerConfig
from realrl_policy.encoders import EncoderConfig, ImageEncoder, random_shift, save_trunk
from realrl_policy.inference import InferenceEngine
from realrl_policy.models import ActorConfig
from realrl_policy.weights_blob import pack_actor

torch.set_num_threads(1)
SIZE = 16
ENCODER = EncoderConfig(cameras=('front',), channels=8, blocks=2, feature_dim=32, shift_pad=1)
CNN = ActorConfig(type='cnn', hidden_sizes=(64, 64), encoder=ENCODER)


def frame_of(target: np.ndarray) -> np.ndarray:
    """A dark 16x16 rgb8 frame with a bright 2x2 square where target ([-0.5, 0.5]^2) is."""
    frame = np.full((SIZE, SIZE, 3), 20, np.uint8)
    col, row = ((target + 0.5) * (SIZE - 2)).round().astype(int)
    frame[row:row + 2, col:col + 2] = (250, 200, 50)
    return frame


def image_batch(n: int, rng) -> dict:
    pos, target = rng.uniform(-0.5, 0.5, (n, 2)), rng.uniform(-0.5, 0.5, (n, 2))
    images = np.stack([frame_of(t) for t in target])
    return {'pos': pos.astype(np.float32), 'target': target, 'images': images}


# -- the encoder ----------------------------------------------------------------------------
def test_random_shift_translates_each_image_by_at_most_pad_pixels():
    img = torch.zeros(64, 1, 12, 12)
    img[:, :, 5, 6] = 1.0
    shifted = random_shift(img, 2)
    rows, cols = [], []
    for one in shifted[:, 0]:
        (r,), (c,) = torch.nonzero(one == 1.0, as_tuple=True)
        rows.append(int(r))
        cols.append(int(c))
        assert one.sum() == 1.0  # moved, not blurred
    assert set(rows) <= set(range(3, 8)) and set(cols) <= set(range(4, 9))
    assert len(set(zip(rows, cols))) > 10  # each image its own offset


def test_the_encoder_augments_only_while_training():
    enc = ImageEncoder(ENCODER)
    frames = {'image_front': torch.from_numpy(np.stack([frame_of(np.zeros(2))] * 8))}
    enc.eval()
    torch.testing.assert_close(enc(frames), enc(frames))
    enc.train()
    assert not torch.allclose(enc(frames), enc(frames))


def test_only_critic_gradients_reach_the_shared_encoder():
    sac = SAC(ObservationSpec(2, ('front',), (SIZE, SIZE)), 2,
              SACConfig(actor=CNN, critic_hidden_sizes=(32, 32)), seed=0)
    assert sac.critic.encoder is sac.actor.encoder  # one encoder, shared
    encoder_ids = {id(p) for p in sac.actor.encoder.parameters()}
    assert not encoder_ids & {id(p) for g in sac.actor_opt.param_groups for p in g['params']}
    assert encoder_ids <= {id(p) for g in sac.critic_opt.param_groups for p in g['params']}
    b = image_batch(8, np.random.default_rng(0))
    obs = {'state': torch.from_numpy(b['pos']), 'image_front': torch.from_numpy(b['images'])}
    sac.actor(obs)[0].sum().backward()
    assert all(p.grad is None for p in sac.actor.encoder.parameters())
    assert any(p.grad is not None for p in sac.actor.head.parameters())
    q1, _ = sac.critic(obs, torch.zeros(8, 2))
    q1.sum().backward()
    assert all(p.grad is not None for p in sac.actor.encoder.parameters())


def test_a_pretrained_trunk_is_loaded_and_a_missing_file_is_a_clear_error(tmp_path):
    source = ImageEncoder(ENCODER)
    save_trunk(source, tmp_path / 'trunk.pt')
    spec = ObservationSpec(2, ('front',), (SIZE, SIZE))
    cfg = SACConfig(actor=ActorConfig(type='cnn', encoder=EncoderConfig(
        **{**ENCODER.__dict__, 'pretrained': str(tmp_path / 'trunk.pt')})))
    sac = SAC(spec, 2, cfg, seed=5)
    for key, value in source.trunk.state_dict().items():
        torch.testing.assert_close(sac.actor.encoder.trunk.state_dict()[key], value)
    missing = SACConfig(actor=ActorConfig(type='cnn', encoder=EncoderConfig(
        cameras=('front',), pretrained=str(tmp_path / 'nope.pt'))))
    with pytest.raises(ValueError, match=r"encoder.pretrained: no file '.*nope.pt'"):
        SAC(spec, 2, missing)


def test_unknown_cameras_and_image_less_actors_are_refused():
    spec = ObservationSpec(2, ('wrist',), (SIZE, SIZE))
    with pytest.raises(ValueError, match=r"cameras \['front'\] are not in the replay store"):
        SAC(spec, 2, SACConfig(actor=CNN))
    with pytest.raises(ValueError, match='encoder.cameras is empty'):
        SAC(spec, 2, SACConfig(actor=ActorConfig(type='cnn')))


# -- CNN-SAC learns through the store and the trainer; the policy serves it -------------------
DESC = {'robot_id': 'cam', 'state_dim': 2, 'action_dim': 2, 'action_low': [-1.0] * 2,
        'action_high': [1.0] * 2, 'cameras': ['front'], 'image_size': [SIZE, SIZE]}


def image_store(path, n: int, rng):
    """A real replay store of n one-step episodes with random actions."""
    from realrl_replay import ReplayWriter, WriterConfig
    from realrl_replay.transition_schema import transition_schema
    desc = DESC
    writer = ReplayWriter.create(path, transition_schema(desc), {'robots': {'cam': desc}},
                                 config=WriterConfig(fsync=False))
    b = image_batch(n, rng)
    action = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    reward = -np.linalg.norm(b['pos'] + action - b['target'], axis=1).astype(np.float32)
    writer.append([store_record(writer, {
        'robot_id': 'cam', 'seq': i, 'obs/state': b['pos'][i], 'next_obs/state': b['pos'][i],
        'obs/image_front': b['images'][i], 'next_obs/image_front': b['images'][i],
        'action': action[i], 'reward': reward[i], 'terminated': True, 'truncated': False,
        'episode_id': i, 'step': 0}) for i in range(n)])
    writer.commit()
    writer.close()


def served_distance(trainer: Trainer, rng, n: int = 200) -> float:
    """Mean distance to the target of the trained actor, served by an InferenceEngine
    from its weights blob with the frames as camera images."""
    engine = InferenceEngine(deterministic=True)
    engine.add_robot('cam', 2, [-1.0] * 2, [1.0] * 2, DESC)
    assert engine.load(*trainer.next_weights(0.0)) == ''
    b = image_batch(n, rng)
    errors = []
    for pos, target, image in zip(b['pos'], b['target'], b['images']):
        action, _ = engine.act('cam', pos, {'front': image})
        errors.append(np.linalg.norm(pos + action - target))
    return float(np.mean(errors))


@pytest.mark.parametrize('actor, reaches', [(CNN, True), (ActorConfig(hidden_sizes=(64, 64)),
                                                         False)])
def test_cnn_sac_reaches_a_target_seen_only_in_the_camera(tmp_path, actor, reaches):
    from realrl_replay import ReplayReader
    rng = np.random.default_rng(0)
    image_store(tmp_path / 'store', 1024, rng)
    cfg = TrainerConfig(algorithm=SACConfig(
        batch_size=32, learning_starts=0, updates_per_step=1.0, actor=actor, gamma=0.5,
        critic_hidden_sizes=(64, 64), init_temperature=0.01), refresh_every_s=0.0, seed=0)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
    try:
        assert trainer.obs_spec.cameras == (('front',) if actor.type == 'cnn' else ())
        for _ in range(400):
            assert trainer.step()
        distance = served_distance(trainer, rng)
    finally:
        trainer.close()
    # random actions: ~0.75; cnn: 0.07 after 400 updates (bfloat16 trunk; float32: 0.06-0.10),
    # mlp (state only): 0.4
    assert (distance < 0.15) == reaches, f'{actor.type}: mean distance {distance:.3f}'


def test_the_engine_needs_the_cameras_an_image_actor_sees():
    from realrl_policy.cnn_actor import CNNActor
    engine = InferenceEngine()
    engine.add_robot('cam', 2, [-1.0] * 2, [1.0] * 2)
    assert engine.load(1, pack_actor(CNNActor(CNN, 2, 2))) == ''
    assert engine.wants_images
    with pytest.raises(ValueError, match=r"no frame of camera 'front'"):
        engine.act('cam', np.zeros(2, np.float32), {'wrist': frame_of(np.zeros(2))})
    action, version = engine.act('cam', np.zeros(2, np.float32), {'front': frame_of(np.zeros(2))})
    assert version == 1 and action.shape == (2,) and np.all(np.abs(action) <= 1)


def test_a_cnn_trainer_resumed_from_its_checkpoint_continues_exactly(tmp_path):
    """Random shifts, sampler draws and the shared encoder's optimiser state all resume."""
    from realrl_replay import ReplayReader
    image_store(tmp_path / 'store', 200, np.random.default_rng(0))
    cfg = TrainerConfig(algorithm=SACConfig(batch_size=16, learning_starts=0, actor=CNN,
                                            critic_hidden_sizes=(32, 32)),
                        refresh_every_s=0.0, seed=0)

    def trainer():
        t = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
        t.sampler.fill()
        return t

    first = trainer()
    try:
        for _ in range(4):
            assert first.step()
        first.save_checkpoint()
        for _ in range(4):
            assert first.step()
        straight = {k: v.clone() for k, v in first.algorithm.critic.state_dict().items()}
    finally:
        first.close()
    torch.manual_seed(7)
    again = trainer()
    try:
        assert again.load_latest()
        for _ in range(4):
            assert again.step()
        for key, value in again.algorithm.critic.state_dict().items():
            torch.testing.assert_close(value, straight[key], rtol=0, atol=0, msg=key)
    finally:
        again.close()


def test_the_trunk_in_bfloat16_gives_the_float32_features_closely_and_a_bad_setting_is_named():
    """trunk_dtype: the same weights give features within bfloat16's rounding of float32's,
    gradients reach the (float32) trunk weights; an unknown format is refused by name."""
    from realrl_policy.encoders import EncoderConfig, ImageEncoder
    torch.manual_seed(0)
    frames = {'image_front': torch.randint(0, 256, (8, SIZE, SIZE, 3), dtype=torch.uint8)}
    exact = ImageEncoder(EncoderConfig(cameras=('front',), shift_pad=0, trunk_dtype='float32'))
    fast = ImageEncoder(EncoderConfig(cameras=('front',), shift_pad=0, trunk_dtype='bfloat16'))
    fast.load_state_dict(exact.state_dict())
    a, b = exact(frames), fast(frames)
    assert b.dtype == torch.float32 and not torch.equal(a, b)  # it did run in bfloat16
    assert torch.allclose(a, b, atol=0.05), (a - b).abs().max()
    b.sum().backward()
    grad = fast.trunk[0].weight.grad
    assert grad is not None and grad.dtype == torch.float32 and grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"trunk_dtype must be one of \['float32', 'bfloat16', "
                                         r"'auto'\], got 'fp16'"):
        EncoderConfig(cameras=('front',), trunk_dtype='fp16')
