"""The learner core on a real replay store: pacing, training, versions, checkpoints."""
import numpy as np
import torch

from realrl_learner.sac import SACConfig
from realrl_learner.trainer import Trainer, TrainerConfig, checkpoint_weights
from realrl_policy.weights_blob import unpack_actor
from realrl_replay.reader import ReplayReader
from realrl_replay.transition_schema import transition_schema
from realrl_replay.writer import ReplayWriter

DESC = {'robot_id': 'arm0', 'state_dim': 4, 'action_dim': 2, 'action_low': [-2.0, 0.0],
        'action_high': [2.0, 1.0], 'cameras': [], 'image_size': [0, 0]}


def fill(writer, first_seq, n, rng):
    records = [{'robot_id': 'arm0', 'seq': first_seq + i,
                'obs/state': rng.normal(size=4).astype(np.float32),
                'next_obs/state': rng.normal(size=4).astype(np.float32),
                'action': np.array([rng.uniform(-2, 2), rng.uniform(0, 1)], np.float32),
                'reward': np.float32(rng.normal()), 'terminated': bool(rng.random() < 0.1),
                'truncated': False, 'episode_id': 0, 'step': i, 'policy_version': 0,
                'intervention': False, 'stamp_ns': 0} for i in range(n)]
    writer.append(records)
    writer.commit()


def test_pacing_training_versions_and_checkpoint_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    writer = ReplayWriter.create(tmp_path / 'store', transition_schema(DESC), {'robots': {'arm0': DESC}})
    fill(writer, 1, 40, rng)
    cfg = TrainerConfig(sac=SACConfig(batch_size=16, learning_starts=30, updates_per_step=2.0),
                        refresh_every_s=0.0)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt', tmp_path / 'm.jsonl')
    trained = sum(trainer.step() for _ in range(100))
    assert trained == 20 == trainer.sac.updates  # (40 - 30) transitions x UTD 2
    fill(writer, 41, 10, rng)
    assert sum(trainer.step() for _ in range(100)) == 20  # the new data allows 20 more
    batch = trainer.batch(trainer.sampler.sample(8))
    assert batch['action'].min() >= -1 and batch['action'].max() <= 1  # actions in the actor's range

    version, blob = trainer.next_weights(now=1e9)
    assert version == 1
    path = trainer.save_checkpoint()
    assert path.exists() and (tmp_path / 'ckpt' / 'latest.pt').exists()
    trainer.log_metrics()
    assert '"updates": 40' in (tmp_path / 'm.jsonl').read_text()

    again = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
    assert again.load_latest() and again.version == 1 and again.sac.updates == 40
    obs = np.ones(4, np.float32)
    torch.testing.assert_close(again.sac.actor(torch.as_tensor(obs[None]))[2],
                               trainer.sac.actor(torch.as_tensor(obs[None]))[2])
    v, early_blob = checkpoint_weights(tmp_path / 'ckpt', cfg.sac)
    assert v == 1
    np.testing.assert_allclose(unpack_actor(early_blob).act(obs, True),
                               unpack_actor(blob).act(obs, True))
    trainer.close()
    again.close()
    writer.close()


def test_a_store_without_robot_descriptions_is_refused(tmp_path):
    import pytest
    writer = ReplayWriter.create(tmp_path / 's', transition_schema(DESC), {})
    writer.close()
    with pytest.raises(ValueError, match='no robot descriptions'):
        Trainer(TrainerConfig(), ReplayReader(tmp_path / 's'), tmp_path / 'c')
