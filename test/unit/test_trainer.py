"""The learner core on a real replay store: pacing, training, versions, checkpoints."""
from pathlib import Path

import numpy as np
import pytest
import torch
from fsync_trace import SyncTrace
from store_rows import store_record

from realrl_common.config import ConfigError, build_config
from realrl_learner.node_config import LearnerNodeConfig
from realrl_learner.sac import SACConfig
from realrl_learner.trainer import Trainer, TrainerConfig, cache_bytes_for, checkpoint_weights
from realrl_policy.weights_blob import unpack_actor
from realrl_replay.reader import ReplayReader
from realrl_replay.transition_schema import transition_schema
from realrl_replay.writer import ReplayWriter

DESC = {'robot_id': 'arm0', 'state_dim': 4, 'action_dim': 2, 'action_low': [-2.0, 0.0],
        'action_high': [2.0, 1.0], 'cameras': [], 'image_size': [0, 0]}


def fill(writer, first_seq, n, rng):
    records = [store_record(writer, {
        'robot_id': 'arm0', 'seq': first_seq + i,
        'obs/state': rng.normal(size=4).astype(np.float32),
        'next_obs/state': rng.normal(size=4).astype(np.float32),
        'action': np.array([rng.uniform(-2, 2), rng.uniform(0, 1)], np.float32),
        'reward': np.float32(rng.normal()), 'terminated': bool(rng.random() < 0.1),
        'truncated': False, 'episode_id': 0, 'step': i}) for i in range(n)]
    writer.append(records)
    writer.commit()


def test_pacing_training_versions_and_checkpoint_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    writer = ReplayWriter.create(tmp_path / 'store', transition_schema(DESC),
                                 {'robots': {'arm0': DESC}})
    fill(writer, 1, 40, rng)
    cfg = TrainerConfig(sac=SACConfig(batch_size=16, learning_starts=30, updates_per_step=2.0),
                        refresh_every_s=0.0)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt',
                      tmp_path / 'm.jsonl')
    trained = sum(trainer.step() for _ in range(100))
    assert trained == 20 == trainer.sac.updates  # (40 - 30) transitions x UTD 2
    fill(writer, 41, 10, rng)
    assert sum(trainer.step() for _ in range(100)) == 20  # the new data allows 20 more
    batch = trainer.batch(trainer.sampler.sample(8))
    # actions in the actor's range
    assert batch['action'].min() >= -1 and batch['action'].max() <= 1

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


def test_checkpoints_are_synced_before_their_rename_and_their_folder_after(tmp_path,
                                                                             monkeypatch):
    """Checked by tracing the calls: the file's bytes are durable before its name, and the
    folder (both renames, and the folder's own name in its parent) after."""
    writer = ReplayWriter.create(tmp_path / 'store', transition_schema(DESC),
                                 {'robots': {'arm0': DESC}})
    fill(writer, 1, 40, np.random.default_rng(0))
    cfg = TrainerConfig(sac=SACConfig(batch_size=16, learning_starts=30), refresh_every_s=0.0)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'run' / 'ckpt')
    trainer.step()
    folder = tmp_path / 'run' / 'ckpt'
    for _ in range(2):  # the first creates the folder
        trace = SyncTrace(monkeypatch)
        path = trainer.save_checkpoint()
        moved = trace.renamed_from(path.with_suffix('.tmp'))
        assert trace.renamed_to(path) == moved
        assert trace.synced_between(path.with_suffix('.tmp'), -1, moved)
        latest = trace.renamed_to(folder / 'latest.pt')
        assert trace.synced_between(folder, max(moved, latest)), trace.events
    assert trace.syncs(folder.parent) == []  # the folder existed: nothing to do
    trace = SyncTrace(monkeypatch)
    trainer.checkpoint_dir = tmp_path / 'new' / 'ckpt'
    trainer.save_checkpoint()
    assert trace.syncs(tmp_path / 'new'), trace.events
    trainer.close()
    writer.close()


def test_a_store_without_robot_descriptions_is_refused(tmp_path):
    import pytest
    writer = ReplayWriter.create(tmp_path / 's', transition_schema(DESC), {})
    writer.close()
    with pytest.raises(ValueError, match='no robot descriptions'):
        Trainer(TrainerConfig(), ReplayReader(tmp_path / 's'), tmp_path / 'c')


def fill_flagged(writer, first_seq, n, rng, intervention):
    records = [store_record(writer, {
        'robot_id': 'arm0', 'seq': first_seq + i,
        'obs/state': np.full(4, 5.0 if intervention else 0.0, np.float32),
        'next_obs/state': rng.normal(size=4).astype(np.float32),
        'action': np.array([0.0, 0.5], np.float32), 'reward': np.float32(0),
        'terminated': False, 'truncated': False, 'episode_id': 0, 'step': i,
        'intervention': intervention})
               for i in range(n)]
    writer.append(records)
    writer.commit()


def test_batches_mix_demonstrations_and_interventions_by_ratio(tmp_path):
    rng = np.random.default_rng(1)
    meta = {'robots': {'arm0': DESC}}
    demo = ReplayWriter.create(tmp_path / 'demo', transition_schema(DESC),
                               {**meta, 'source': 'demo'})
    fill(demo, 1, 200, rng)
    demo.close()
    writer = ReplayWriter.create(tmp_path / 'store', transition_schema(DESC), meta)
    fill_flagged(writer, 1, 300, rng, intervention=False)
    cfg = TrainerConfig(sac=SACConfig(batch_size=100, learning_starts=0),
                        demo_stores=(str(tmp_path / 'demo'),), demo_ratio=0.5,
                        intervention_ratio=0.25, refresh_every_s=0.0)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
    names = trainer.sampler.names
    # No intervention rows yet: their share goes to the other sources (2:1 demo:online).
    counts = np.bincount(trainer.sampler.sample()['source'], minlength=len(names))
    assert dict(zip(names, counts.tolist())) == {'online': 33, 'interventions': 0, 'demos': 67}
    fill_flagged(writer, 301, 50, rng, intervention=True)
    trainer.sampler.refresh()
    trainer.sampler.samplers['interventions'].sample(1)  # waits until their block is cached
    batch = trainer.sampler.sample()
    counts = np.bincount(batch['source'], minlength=len(names))
    assert dict(zip(names, counts.tolist())) == {'online': 25, 'interventions': 25, 'demos': 50}
    from_interventions = batch['source'] == names.index('interventions')
    assert (batch['obs/state'][from_interventions] == 5.0).all()
    assert trainer.allowed_updates() == int(350 * cfg.sac.updates_per_step)  # this run only
    assert trainer.step()
    trainer.close()
    writer.close()


def test_each_demo_store_is_opened_once_and_its_reader_sizes_the_cache(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    meta = {'robots': {'arm0': DESC}}
    for name in ('demo', 'store'):
        writer = ReplayWriter.create(tmp_path / name, transition_schema(DESC), meta)
        fill(writer, 1, 40, rng)
        writer.close()
    opened, real_init = [], ReplayReader.__init__

    def counting_init(self, path, *args, **kwargs):  # the real reader, its openings counted
        opened.append(Path(path).resolve())
        real_init(self, path, *args, **kwargs)
    monkeypatch.setattr(ReplayReader, '__init__', counting_init)
    cfg = TrainerConfig(sac=SACConfig(batch_size=16, learning_starts=0),
                        demo_stores=(str(tmp_path / 'demo'),), refresh_every_s=0.0)
    trainer = Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
    assert opened.count((tmp_path / 'demo').resolve()) == 1
    demo = trainer.sampler.samplers['demos'].samplers['demo']
    fields = tuple(demo.config.fields)
    assert demo.config.cache_bytes == cache_bytes_for(cfg.cache_bytes, [demo.reader], fields)
    assert trainer.sampler.sample()['obs/state'].shape == (16, 4)
    trainer.close()


def test_demo_stores_of_another_robot_space_are_refused(tmp_path):
    other = {**DESC, 'state_dim': 6}
    demo = ReplayWriter.create(tmp_path / 'demo', transition_schema(other),
                               {'robots': {'arm0': other}})
    demo.close()
    writer = ReplayWriter.create(tmp_path / 'store', transition_schema(DESC),
                                 {'robots': {'arm0': DESC}})
    cfg = TrainerConfig(demo_stores=(str(tmp_path / 'demo'),))
    with pytest.raises(ValueError, match="field 'obs/state'"):
        Trainer(cfg, ReplayReader(tmp_path / 'store'), tmp_path / 'ckpt')
    writer.close()


def test_ratios_that_leave_no_room_for_online_data_are_refused():
    with pytest.raises(ConfigError, match='must be <= 1'):
        TrainerConfig(demo_stores=('x',), demo_ratio=0.8, intervention_ratio=0.3)
    TrainerConfig(demo_ratio=0.8, intervention_ratio=0.3)  # demo_ratio unused without stores


def test_the_learner_node_config_names_a_bad_weights_budget():
    assert build_config(LearnerNodeConfig, {'weights_max_mbit_s': 400}).weights_max_mbit_s == 400
    with pytest.raises(ConfigError, match=r'weights_max_mbit_s must be >= 0 \(0: unpaced\), '
                                          r'got -1'):
        build_config(LearnerNodeConfig, {'weights_max_mbit_s': -1})
