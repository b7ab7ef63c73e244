import time

import numpy as np
import pytest
from _replay_fixtures import factory, make_writer

from realrl_replay import MixedSampler, ReplayReader, Sampler, SamplerConfig


@pytest.fixture(scope='module')
def store(tmp_path_factory):
    """2,000 rows from two robots; every 10th row is an intervention."""
    root = tmp_path_factory.mktemp('sampler') / 's'
    fac = factory()
    with make_writer(root) as w:
        for start in range(0, 1000, 50):
            for robot in ('a', 'b'):
                cols = fac.make(robot, np.arange(start, start + 50))
                cols['intervention'] = cols['seq'] % 10 == 0
                w.append(cols)
            w.commit()
    return root


def cfg(store, rows=500, **kw):
    row_bytes = ReplayReader(store).schema.row_bytes
    return SamplerConfig(cache_bytes=rows * row_bytes, seed=3, **kw)


def test_batches_are_whole_committed_rows_and_the_cache_is_bounded(store):
    fac = factory()
    config = cfg(store)
    with Sampler(store, config) as s:
        for _ in range(20):
            b = s.sample()
            assert len(b['seq']) == 256 and (b['weight'] == 1).all()
            assert (b['index'] < 2000).all()
            assert (b['seq'] % 10 == 0).tolist() == b['intervention'].tolist()
            b['intervention'] = fac.make('a', b['seq'])['intervention']  # as made, unmarked
            assert fac.check(b, s.robot_names).all()
        assert sum(a.nbytes for a in s._cache.arena.values()) <= config.cache_bytes
        assert s.cached_rows <= 500


def test_uniform_over_the_store_in_expectation(store):
    """Uniform over time: the cache rotates, so each learner step is given time to load."""
    with Sampler(store, cfg(store, swaps_per_batch=4)) as s:
        assert s.fill() == 496  # 31 blocks of 16 rows
        hist = np.zeros(2000)
        for _ in range(600):
            hist += np.bincount(s.sample()['index'], minlength=2000)
            time.sleep(0.001)
        assert s.stats['loads'] > 1000  # the cached subset was replaced many times over
    bins = hist.reshape(10, 200).sum(1)
    assert np.abs(bins / bins.mean() - 1).max() < 0.2, bins


def test_window_covers_only_the_newest_rows(store):
    with Sampler(store, cfg(store, window=300)) as s:
        idx = np.concatenate([s.sample()['index'] for _ in range(20)])
    assert idx.min() >= 1700 and idx.max() == 1999


def test_where_selects_rows_and_mixer_keeps_ratios(store):
    online = Sampler(store, cfg(store, where=('intervention', (False,))))
    interventions = Sampler(store, cfg(store, where=('intervention', (True,))))
    mix = MixedSampler({'online': online, 'intervention': interventions},
                       {'online': 3, 'intervention': 1}, batch_size=256)
    try:
        for _ in range(5):
            b = mix.sample()
            assert np.bincount(b['source']).tolist() == [192, 64]
            assert b['intervention'][b['source'] == 1].all()
            assert not b['intervention'][b['source'] == 0].any()
    finally:
        mix.close()


def test_prioritized_sampling_follows_priorities_with_importance_weights(store):
    with Sampler(store, cfg(store, rows=3000, prioritized=True, alpha=1.0)) as s:
        assert s.fill() == 2000
        s.update_priorities(np.arange(2000), np.where(np.arange(2000) < 1000, 9.0, 1.0))
        idx, w = [], []
        for _ in range(40):
            b = s.sample()
            idx.append(b['index'])
            w.append(b['weight'])
    idx, w = np.concatenate(idx), np.concatenate(w)
    assert 0.85 < (idx < 1000).mean() < 0.95
    assert w.max() <= 1.0 and w[idx < 1000].mean() < w[idx >= 1000].mean()


def test_sampler_sees_new_commits(tmp_path):
    fac = factory()
    with make_writer(tmp_path / 's') as w:
        w.append(fac.make('a', np.arange(100)))
        w.commit()
        with Sampler(tmp_path / 's', SamplerConfig(cache_bytes=10 << 20, batch_size=64,
                                                   refresh_interval_s=0)) as s:
            assert s.sample()['index'].max() < 100
            w.append(fac.make('a', np.arange(100, 400)))
            w.commit()
            seen = np.concatenate([s.sample()['index'] for _ in range(30)])
            assert seen.max() >= 300 and s.count == 400


def test_bad_sampler_configs_name_the_field(store):
    with pytest.raises(ValueError, match='cache_bytes'):
        Sampler(store, SamplerConfig(cache_bytes=1000))
    with pytest.raises(ValueError, match='not in the store'):
        Sampler(store, cfg(store, fields=('nope',)))
    with pytest.raises(ValueError, match='where field'):
        Sampler(store, cfg(store, where=('obs/state', (1,))))
    with pytest.raises(ValueError, match='window'):
        SamplerConfig(window=0)
    with pytest.raises(ValueError, match='update_priorities'):
        with Sampler(store, cfg(store)) as s:
            s.update_priorities([0], [1.0])
