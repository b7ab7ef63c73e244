"""Stores of earlier runs as extra read-only sources; metadata travels with each store."""
import json
import struct
import zlib

import numpy as np
import pytest
from _replay_fixtures import SMALL, factory, small_schema, tree_digest

from realrl_replay import (
    MixedSampler,
    ReplayReader,
    ReplayWriter,
    SamplerConfig,
    StoreError,
    open_sources,
)
from realrl_replay.layout import COMMIT_END, COMMIT_MAGIC, CommitMarker

DESC = {'state_dim': 4, 'action_dim': 2, 'action_low': [-1, -1], 'action_high': [1, 1]}


def build(root, robot, n, desc=DESC):
    fac = factory()
    w = ReplayWriter.create(root, small_schema(),
                            {'robots': {robot: {'robot_id': robot, **desc}}, 'run': root.name},
                            SMALL)
    w.append(fac.make(robot, np.arange(n)))
    w.commit()
    return w


def cfg(**kw):
    return SamplerConfig(cache_bytes=8 << 20, batch_size=100, seed=0, **kw)


def test_earlier_runs_are_mixed_read_only_and_uniformly(tmp_path):
    build(tmp_path / 'run1', 'arm0', 300).close()
    build(tmp_path / 'run2', 'arm1', 100).close()
    live = build(tmp_path / 'run3', 'arm2', 100)   # the running node's store, writer open
    before = {n: tree_digest(tmp_path / n) for n in ('run1', 'run2')}
    fac = factory()
    with open_sources([tmp_path / 'run1', tmp_path / 'run2', tmp_path / 'run3'], cfg(
            refresh_interval_s=0)) as mix:
        assert mix.names == ('run1', 'run2', 'run3')
        assert mix.counts(100).tolist() == [60, 20, 20]      # proportional to rows
        seen = np.zeros(3)
        for _ in range(20):
            b = mix.sample()
            seen += np.bincount(b['source'], minlength=3)
            for i, name in enumerate(mix.names):
                part = {k: v[b['source'] == i] for k, v in b.items()
                        if k not in ('index', 'weight', 'source')}
                assert fac.check(part, mix.samplers[name].robot_names).all()
        live.append(fac.make('arm2', np.arange(100, 300)))
        live.commit()
        mix.refresh()
        assert mix.counts(100).tolist() == [43, 14, 43]      # the live store grew
        assert mix.samplers['run1'].reader.metadata['run'] == 'run1'
    live.close()
    assert {n: tree_digest(tmp_path / n) for n in ('run1', 'run2')} == before
    ReplayWriter.open(tmp_path / 'run1').close()  # the readers held no lock


def test_fixed_ratios_and_named_sources(tmp_path):
    build(tmp_path / 'online', 'arm0', 200).close()
    build(tmp_path / 'demos', 'demo', 50).close()
    with open_sources({'online': tmp_path / 'online', 'demo': tmp_path / 'demos'}, cfg(),
                      ratios={'online': 3, 'demo': 1}) as mix:
        assert isinstance(mix, MixedSampler)
        assert np.bincount(mix.sample(100)['source']).tolist() == [75, 25]


def test_incompatible_or_invalid_stores_are_refused_by_name(tmp_path):
    build(tmp_path / 'a', 'arm0', 20).close()
    build(tmp_path / 'b', 'arm1', 20, {**DESC, 'action_dim': 3}).close()
    with pytest.raises(ValueError, match="action_dim.*'b'"):
        open_sources([tmp_path / 'a', tmp_path / 'b'], cfg())
    (tmp_path / 'photos').mkdir()
    (tmp_path / 'photos' / 'cat.jpg').write_bytes(b'not a store')
    before = tree_digest(tmp_path / 'photos')
    with pytest.raises(StoreError, match='photos.*not a realrl replay store'):
        open_sources([tmp_path / 'a', tmp_path / 'photos'], cfg())
    assert tree_digest(tmp_path / 'photos') == before
    with pytest.raises(ValueError, match='no field'):
        open_sources([tmp_path / 'a'], cfg(fields=('nope',)))


def unshard(root, version):
    """Rewrite a store's shards as the file per chunk of formats 1 and 2, and its identity as
    of ``version``; returns the identity document (without its checksum)."""
    reader = ReplayReader(root)
    for spec in reader.schema.fields:
        folder, size = root / 'data' / spec.name, spec.shard_chunks
        chunks = {}  # all read first: shard j and chunk j have the same file name
        for shard in list(folder.glob('c.*')):
            j, raw = int(shard.name.split('.')[1]), shard.read_bytes()
            index = np.frombuffer(raw[:16 * size], '<u8').reshape(-1, 2)
            for i, (offset, nbytes) in enumerate(index.tolist()):
                if offset != 2**64 - 1:
                    chunks[j * size + i] = raw[offset:offset + nbytes]
            shard.unlink()
        for k, data in chunks.items():
            (folder / ('c.%d' % k + '.0' * len(spec.shape))).write_bytes(data)
        meta = json.loads((folder / 'zarr.json').read_text())
        (sharding,) = meta['codecs']
        meta['codecs'] = sharding['configuration']['codecs']
        meta['chunk_grid']['configuration']['chunk_shape'] = sharding['configuration'][
            'chunk_shape']
        (folder / 'zarr.json').write_text(json.dumps(meta))
    body = json.loads((root / 'realrl_replay.json').read_text())['body']
    body['version'] = version
    for field in body['schema']:
        del field['shard_chunks']
    for key in ('target_shard_bytes', 'max_shard_chunks'):
        del body['config'][key]
    write_identity(root, body)
    return body


def write_identity(root, body):
    text = json.dumps(body, sort_keys=True, separators=(',', ':'))
    (root / 'realrl_replay.json').write_text(
        json.dumps({'body': body, 'crc32': zlib.crc32(text.encode())}))


def to_format_1(root):
    """Rewrite a store as format 1 wrote it: a file per chunk; one marker, commit.bin, without
    a length."""
    reader = ReplayReader(root)
    marker = reader.snapshot()
    body = unshard(root, 1)
    for key in ('image_codec', 'dedup_next_obs'):  # StoreConfig of format 1 had neither
        del body['config'][key]
    write_identity(root, body)
    header = json.dumps({'store_uuid': marker.store_uuid, 'commit_id': marker.commit_id,
                         'count': marker.count, 'robots': list(marker.robots),
                         'seqs': list(marker.seqs)}).encode()
    data = COMMIT_MAGIC + struct.pack('<I', len(header)) + header + b''.join(
        np.ascontiguousarray(marker.tails[f.name]).tobytes() for f in reader.schema.fields)
    (root / 'commit.bin').write_bytes(data + struct.pack('<I', zlib.crc32(data)) + COMMIT_END)
    for slot in ('commit.0', 'commit.1'):
        (root / slot).unlink()
    return marker


def test_stores_of_format_1_are_read_and_sampled_never_written(tmp_path):
    root = tmp_path / 'old'
    build(root, 'arm0', 150).close()
    expect = ReplayReader(root).read_range(0, 150)
    marker = to_format_1(root)
    r = ReplayReader(root)
    assert r.info.version == 1 and r.count == marker.count == 150
    got = r.read_range(0, 150)
    for k in expect:
        np.testing.assert_array_equal(got[k], expect[k])
    with open_sources([root], cfg()) as mix:
        assert len(mix.sample()['seq']) == 100
    before = tree_digest(root)
    with pytest.raises(StoreError, match='read-only'):
        ReplayWriter.open(root)
    assert tree_digest(root) == before
    assert isinstance(CommitMarker.read(root, marker.store_uuid, r.schema, 1), CommitMarker)


def test_stores_of_format_2_are_read_and_sampled_never_written(tmp_path):
    root = tmp_path / 'v2'
    build(root, 'arm0', 150).close()
    expect = ReplayReader(root).read_range(0, 150)
    unshard(root, 2)
    r = ReplayReader(root)
    assert r.info.version == 2 and r.count == 150
    assert all(f.shard_chunks == 0 for f in r.schema.fields)  # a file per chunk
    got = r.read_range(0, 150)
    for k in expect:
        np.testing.assert_array_equal(got[k], expect[k])
    with open_sources([root], cfg()) as mix:
        assert len(mix.sample()['seq']) == 100
    before = tree_digest(root)
    with pytest.raises(StoreError, match='version 2 is read-only'):
        ReplayWriter.open(root)
    assert tree_digest(root) == before
