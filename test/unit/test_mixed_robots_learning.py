"""One store, one learner and one policy for robots whose state and action sizes differ."""
import numpy as np
import torch
from store_rows import store_record

from realrl_learner.sac import MASK_KEY, SACConfig
from realrl_learner.trainer import Trainer, TrainerConfig, checkpoint_weights
from realrl_policy.inference import InferenceEngine
from realrl_policy.models import ActorConfig, GaussianActor
from realrl_replay.reader import ReplayReader
from realrl_replay.transition_schema import EMBODIMENT, store_schema
from realrl_replay.writer import ReplayWriter


def desc(rid, kind, joints, bound):
    layout = {'joint_pos': [0, joints], 'ee_to_target': [joints, joints + 3]}
    return {'robot_id': rid, 'kind': kind, 'state_dim': joints + 3, 'state_layout': layout,
            'action_dim': joints, 'action_low': [-bound] * joints,
            'action_high': [bound] * joints, 'cameras': [], 'image_size': [0, 0]}


ROBOTS = {'big0': desc('big0', 'arm7', 7, 1.0), 'small0': desc('small0', 'arm6', 6, 0.5)}


def fill(writer, space, n, rng):
    """Rows as the replay node writes them: padded, with their embodiment."""
    records = []
    for rid, d in ROBOTS.items():
        e = space.index(d)
        for i in range(n):
            b = d['action_high'][0]
            records.append(store_record(writer, {
                'robot_id': rid, 'seq': i + 1, EMBODIMENT: np.int16(e),
                'obs/state': space.pad_state(e, rng.normal(size=d['state_dim'])),
                'next_obs/state': space.pad_state(e, rng.normal(size=d['state_dim'])),
                'action': space.pad_action(e, rng.uniform(-b, b, d['action_dim'])),
                'reward': np.float32(rng.normal()), 'terminated': False, 'truncated': False,
                'episode_id': 0, 'step': i}))
    writer.append(records)
    writer.commit()


def test_learner_trains_one_actor_that_serves_both_kinds(tmp_path):
    rng = np.random.default_rng(0)
    schema, space = store_schema(ROBOTS)
    assert schema['obs/state'][0] == (10,) and schema['action'][0] == (7,)
    writer = ReplayWriter.create(tmp_path / 'store', schema,
                                 {'robots': ROBOTS, 'space': space.to_json()})
    fill(writer, space, 40, rng)
    cfg = TrainerConfig(sac=SACConfig(batch_size=32, learning_starts=40), refresh_every_s=0.0)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
    assert (trainer.obs_dim, trainer.act_dim) == (12, 7)  # 10 state + 2-way one-hot; 7 actions
    batch = trainer.batch(trainer.sampler.sample(64))
    small = batch['obs'][:, 11] == 1  # one-hot of the 6-joint kind (sorted ids: big0 first)
    assert small.any() and (~small).any()
    assert torch.all(batch[MASK_KEY][small, 6] == 0) and torch.all(batch[MASK_KEY][~small] == 1)
    assert torch.all(batch['action'][small, 6] == 0)
    assert batch['action'].abs().max() <= 1
    assert sum(trainer.step() for _ in range(50)) == 50
    assert np.isfinite(trainer.last_metrics['train/critic_loss'])

    version, blob = trainer.next_weights(now=1e9)
    engine = InferenceEngine(deterministic=True)
    for rid, d in ROBOTS.items():
        engine.add_robot(rid, d['state_dim'], d['action_low'], d['action_high'], d)
    assert engine.load(version, blob) == ''
    for rid, d in ROBOTS.items():
        action, v = engine.act(rid, rng.normal(size=d['state_dim']))
        assert v == version and action.shape == (d['action_dim'],)
        assert np.all(np.abs(action) <= d['action_high'][0])
    # A robot the weights were not trained for is refused, by name.
    stranger = desc('odd0', 'arm5', 5, 1.0)
    try:
        engine.add_robot('odd0', 8, [-1] * 5, [1] * 5, stranger)
    except ValueError as e:
        assert "'odd0' is arm5/8/5" in str(e)
    else:
        raise AssertionError('a robot of an unknown kind was served')

    trainer.save_checkpoint()
    v, early = checkpoint_weights(tmp_path / 'ckpt', cfg.sac)
    fresh = InferenceEngine(deterministic=True)
    fresh.add_robot('small0', 9, [-0.5] * 6, [0.5] * 6, ROBOTS['small0'])
    assert fresh.load(v, early) == ''  # a resumed learner's first weights carry the space
    state = np.ones(9, np.float32)
    np.testing.assert_allclose(fresh.act('small0', state)[0], engine.act('small0', state)[0])
    trainer.close()
    writer.close()


def test_masked_action_values_are_zero_and_cost_no_log_probability():
    torch.manual_seed(0)
    actor = GaussianActor(ActorConfig(hidden_sizes=(16,)), obs_dim=5, act_dim=3)
    obs = torch.randn(4, 5)
    mask = torch.tensor([[1., 1., 0.]] * 4)
    torch.manual_seed(1)
    action, logp, mean = actor(obs, mask)
    torch.manual_seed(1)
    _, logp_full, _ = actor(obs)
    assert torch.all(action[:, 2] == 0) and torch.all(mean[:, 2] == 0)
    assert torch.all(logp != logp_full)  # the third value's density is left out
