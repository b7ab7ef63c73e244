"""Retention: size/age caps evict whole oldest episodes; nobody reads evicted rows."""
import time

import numpy as np
import pytest
from _replay_fixtures import factory, make_writer

from realrl_replay import (
    ReplayReader,
    ReplayWriter,
    RetentionConfig,
    RowsEvictedError,
    Sampler,
    SamplerConfig,
    WriterConfig,
)

ROBOTS = ('a', 'b', 'c')
EP = 10


def feed(w, fac, rounds, start=0, commit_every=2):
    """Robots interleaved in bursts of 3; commits now and then."""
    for i in range(start, start + rounds):
        for r in ROBOTS:
            w.append(fac.make(r, np.arange(3 * i, 3 * i + 3)))
        if i % commit_every == 0:
            w.commit()
    w.commit()


def shard_files(root, spec):
    return {int(p.name.split('.')[1]) for p in (root / 'data' / spec.name).glob('c.*')}


def assert_whole_episodes(reader):
    idx = np.arange(reader.first, reader.count)
    rows = reader.read(idx[reader.valid(idx)], ['robot_id', 'episode_id', 'step'])
    for code in np.unique(rows['robot_id']):
        sel = rows['robot_id'] == code
        for ep in np.unique(rows['episode_id'][sel]):
            steps = rows['step'][sel & (rows['episode_id'] == ep)]
            assert steps[0] == 0 and (np.diff(steps) == 1).all(), (code, ep, steps)


def test_row_cap_evicts_whole_oldest_episodes_and_deletes_their_chunks(tmp_path):
    fac = factory(episode_len=EP)
    root = tmp_path / 's'
    cap = RetentionConfig(max_rows=200)
    with make_writer(root, retention=cap) as w:
        feed(w, fac, 100)
        assert 0 < w.first and w.count - w.first <= 200
    r = ReplayReader(root)
    assert r.count == 900 and r.first == w.first
    assert set(r.min_episode) == set(ROBOTS)
    assert_whole_episodes(r)
    for spec in r.schema.fields:  # nothing wholly below the watermark is left on disk
        assert min(shard_files(root, spec)) == r.first // (spec.chunk_rows * spec.shard_chunks)
    with pytest.raises(RowsEvictedError):
        r.read([0])
    with ReplayWriter.open(root, WriterConfig(fsync=False, retention=cap)) as w2:
        assert w2.first == r.first
        feed(w2, fac, 20, start=100)
    assert_whole_episodes(ReplayReader(root))


def test_sampler_never_returns_evicted_rows_even_as_eviction_happens(tmp_path):
    fac = factory(episode_len=EP)
    root = tmp_path / 's'
    with make_writer(root, retention=RetentionConfig(max_rows=300)) as w:
        feed(w, fac, 60)
        row_bytes = ReplayReader(root).schema.row_bytes
        with Sampler(root, SamplerConfig(cache_bytes=400 * row_bytes, batch_size=64, seed=1,
                                         refresh_interval_s=0)) as s:
            s.fill()
            for i in range(40):
                if i % 4 == 0:
                    feed(w, fac, 8, start=60 + 2 * i)
                b = s.sample()
                assert (b['index'] >= s.first).all()
                bound = np.array([dict(zip(s.robot_names, s._marker.min_episode)).get(n, 0)
                                  for n in s.robot_names])
                assert (b['episode_id'] >= bound[b['robot_id']]).all()
                assert fac.check({k: v for k, v in b.items() if k not in ('index', 'weight')},
                                 s.robot_names).all()


def test_a_reader_holding_an_old_commit_gets_a_clear_error_for_deleted_chunks(tmp_path):
    fac = factory(episode_len=EP)
    root = tmp_path / 's'
    with make_writer(root, retention=RetentionConfig(max_rows=150)) as w:
        feed(w, fac, 30)
        r = ReplayReader(root, decoded_cache_bytes=0)
        old_first = r.first
        feed(w, fac, 60, start=30)
        with pytest.raises(RowsEvictedError):
            r.read([old_first])       # as of its old marker: the chunk is gone
        r.refresh()
        assert r.first > old_first
        r.read([r.first])


def test_reopen_removes_shards_left_below_the_watermark_by_a_crash(tmp_path):
    fac = factory(episode_len=EP)
    root = tmp_path / 's'
    with make_writer(root, retention=RetentionConfig(max_rows=100)) as w:
        feed(w, fac, 40)
    r = ReplayReader(root)
    spec = r.schema.by_name['obs/image_0']
    stray = root / 'data' / 'obs' / 'image_0' / 'c.0.0.0.0'
    stray.write_bytes(b'left over by a deletion cut short')
    ReplayWriter.open(root, WriterConfig(fsync=False)).close()
    assert not stray.exists() and r.first // (spec.chunk_rows * spec.shard_chunks) > 0


def test_age_and_size_caps(tmp_path):
    now = time.time_ns()
    fac = factory(episode_len=EP, stamp0_ns=now - 60 * 10**9, dt_ns=10**8)  # 0.1 s per seq
    with make_writer(tmp_path / 'age', retention=RetentionConfig(max_age_s=30)) as w:
        feed(w, fac, 200)                     # seqs 0..599: 60 s; the older half goes
    r = ReplayReader(tmp_path / 'age')
    idx = np.arange(r.first, r.count)
    stamps = r.read(idx[r.valid(idx)], ['stamp_ns'])['stamp_ns']
    assert stamps.min() >= now - 31 * 10**9 and r.first > r.count // 3
    assert_whole_episodes(r)

    fac = factory(episode_len=EP)
    cap = 200_000
    with make_writer(tmp_path / 'size', retention=RetentionConfig(max_bytes=cap)) as w:
        feed(w, fac, 150)
    r = ReplayReader(tmp_path / 'size')
    kept = 0  # disk bytes of the chunks holding kept rows (whole evicted shards are deleted)
    for spec in r.schema.fields:
        first_chunk, size = r.first // spec.chunk_rows, spec.shard_chunks
        assert min(shard_files(tmp_path / 'size', spec)) == first_chunk // size
        for j in shard_files(tmp_path / 'size', spec):
            shard = tmp_path / 'size' / 'data' / spec.name / ('c.%d' % j + '.0' * len(spec.shape))
            index = np.frombuffer(shard.read_bytes()[:16 * size], '<u8').reshape(-1, 2)
            for i, (offset, nbytes) in enumerate(index.tolist()):
                complete = first_chunk <= j * size + i < r.count // spec.chunk_rows
                if offset != 2**64 - 1 and complete:  # (not the plain view's partial chunk)
                    kept += -(-nbytes // 4096) * 4096
    assert 0.5 * cap < kept < 1.3 * cap and r.first > 0


def test_without_episode_ids_the_cut_is_at_the_row(tmp_path):
    schema = {'x': ((3,), np.float32)}
    root = tmp_path / 's'
    with ReplayWriter.create(root, schema, {}, config=WriterConfig(
            fsync=False, retention=RetentionConfig(max_rows=100))) as w:
        for i in range(10):
            w.append({'robot_id': ['a'] * 50, 'seq': np.arange(50 * i, 50 * i + 50),
                      'x': np.full((50, 3), i, np.float32)})
            w.commit()
    r = ReplayReader(root)
    assert r.count - r.first == 90 and r.read([r.first])['seq'][0] == r.first


def test_bad_retention_configs():
    with pytest.raises(ValueError, match='max_rows'):
        RetentionConfig(max_rows=0)
    with pytest.raises(ValueError, match='low_water'):
        RetentionConfig(low_water=0)


def test_age_cap_needs_a_time_field(tmp_path):
    with pytest.raises(ValueError, match='age_field'):
        make_writer(tmp_path / 's', retention=RetentionConfig(max_age_s=1, age_field='nope'))
