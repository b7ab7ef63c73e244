import json
import os

import numpy as np
import pytest
from _replay_fixtures import SMALL, factory, make_writer, seqs_of, small_schema, tree_digest

from realrl_replay import (
    CodecConfig,
    ReplayReader,
    ReplayWriter,
    StoreConfig,
    StoreError,
    StoreLockedError,
)


def test_append_commit_read_roundtrip_and_metadata(tmp_path):
    fac = factory()
    with make_writer(tmp_path / 's', fsync=True) as w:
        assert w.append(fac.records('arm_a', range(10))) == [True] * 10
        assert w.count == 0 and w.pending == 10
        info = w.commit()
        assert (info.count, info.new_rows, dict(info.seqs)) == (10, 10, {'arm_a': 9})
        w.append(fac.make('arm_b', np.arange(100)))
        w.commit()
    r = ReplayReader(tmp_path / 's')
    assert r.refresh() == 110 and r.metadata == {'task': 'test'}
    rows = r.read(np.arange(110))
    assert fac.check(rows, r.robot_names).all()
    assert list(seqs_of(rows, r.robot_names, 'arm_b')) == list(range(100))
    assert r.committed_seqs == {'arm_a': 9, 'arm_b': 99}


def test_resends_are_dropped_and_acknowledged_by_committed_seq(tmp_path):
    fac = factory()
    with make_writer(tmp_path / 's') as w:
        w.append(fac.make('a', np.arange(5)))
        assert w.append(fac.make('a', [3, 4, 5])) == [False, False, True]  # pending resend
        w.commit()
        assert w.committed_seq('a') == 5 and w.committed_seq('unknown') == -1
        assert w.append(fac.make('a', [0, 5, 6, 9])) == [False, False, True, True]
        assert w.commit().seqs['a'] == 9
        assert w.count == 8


def test_uncommitted_rows_are_gone_after_reopen_and_seq_restarts_from_committed(tmp_path):
    fac = factory()
    w = make_writer(tmp_path / 's')
    w.append(fac.make('a', np.arange(7)))
    w.commit()
    w.append(fac.make('a', np.arange(7, 20)))
    w.close(commit=False)
    with ReplayWriter.open(tmp_path / 's') as w:
        assert w.count == 7 and w.committed_seq('a') == 6
        assert w.append(fac.make('a', np.arange(5, 9))) == [False, False, True, True]


def test_close_commits_pending_rows(tmp_path):
    with make_writer(tmp_path / 's') as w:
        w.append(factory().make('a', np.arange(3)))
    assert ReplayReader(tmp_path / 's').count == 3


@pytest.mark.filterwarnings('ignore:Numcodecs codecs are not in the Zarr')
@pytest.mark.parametrize('codec', [CodecConfig(), CodecConfig('zstd', 1, 'noshuffle', 'delta'),
                                   CodecConfig('lz4', 1, 'bitshuffle', 'delta'),
                                   CodecConfig('lz4', 1, 'bitshuffle', 'pixel_delta')])
def test_store_is_plain_zarr_for_complete_chunks(tmp_path, codec):
    import zarr

    from realrl_replay.pixel_delta import register_zarr_codec
    register_zarr_codec()  # what a user of zarr alone does to read pixel_delta chunks
    fac = factory()
    cfg = StoreConfig(**{**vars(SMALL), 'image_codec': codec})
    with make_writer(tmp_path / 's', store_config=cfg) as w:
        assert w.schema.by_name['obs/image_0'].codec == codec
        w.append(fac.make('a', np.arange(150)))
    r = ReplayReader(tmp_path / 's')
    g = zarr.open_group(str(tmp_path / 's' / 'data'), mode='r')
    for spec in r.schema.fields:
        n = r.count // spec.chunk_rows * spec.chunk_rows
        assert n > 0
        np.testing.assert_array_equal(g[spec.name][:n], r.read_range(0, n, [spec.name])[spec.name])


def test_second_writer_gets_an_error_naming_the_holder(tmp_path):
    with make_writer(tmp_path / 's'):
        with pytest.raises(StoreLockedError, match=f'pid {os.getpid()}') as e:
            ReplayWriter.open(tmp_path / 's')
        assert e.value.holder_pid == os.getpid()
        ReplayReader(tmp_path / 's').refresh()  # readers are never blocked
    ReplayWriter.open(tmp_path / 's').close()   # released on close


@pytest.mark.parametrize('records, words', [
    ([{'robot_id': 'a', 'seq': 0}], 'missing'),
    ('extra', 'unknown'),
    ('bad_shape', 'shape'),
    ('bad_dtype', 'float32'),
    ('bad_robot', 'robot_id'),
    ('neg_seq', 'seq must be'),
])
def test_bad_records_are_rejected_and_leave_the_writer_unchanged(tmp_path, records, words):
    fac = factory()
    good = fac.records('a', range(3))
    bad = [dict(r) for r in good]
    if records == 'extra':
        for r in bad:
            r['bogus'] = 1
    elif records == 'bad_shape':
        bad[1]['obs/state'] = np.zeros(5, np.float32)
    elif records == 'bad_dtype':
        bad = fac.make('a', [0, 1, 2])
        bad['reward'] = np.array(['x', 'y', 'z'])
    elif records == 'bad_robot':
        bad[2]['robot_id'] = 7
    elif records == 'neg_seq':
        bad[2]['seq'] = -1
    else:
        bad = records
    with make_writer(tmp_path / 's') as w:
        with pytest.raises(ValueError, match=words):
            w.append(bad)
        assert w.pending == 0 and w.robot_names == ()
        assert w.append(good) == [True] * 3


def test_create_refuses_non_empty_folder_and_files(tmp_path):
    (tmp_path / 'busy').mkdir()
    (tmp_path / 'busy' / 'x.txt').write_text('keep me')
    before = tree_digest(tmp_path / 'busy')
    with pytest.raises(StoreError, match='not empty'):
        make_writer(tmp_path / 'busy')
    assert tree_digest(tmp_path / 'busy') == before
    (tmp_path / 'file').write_text('x')
    with pytest.raises(StoreError, match='not a folder'):
        make_writer(tmp_path / 'file')


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(ValueError, match='metadata'):
        ReplayWriter.create(tmp_path / 's', small_schema(), {'f': object()})


def _corrupt(kind, root):
    if kind == 'foreign':
        (root / 'notes.txt').write_text('hello')
    elif kind == 'missing_identity':
        (root / 'realrl_replay.json').unlink()
    elif kind == 'bad_identity':
        (root / 'realrl_replay.json').write_text('{"body": {"format": "x"}, "crc32": 1}')
    elif kind == 'other_format':
        doc = {'format': 'something-else'}
        import zlib
        body = json.dumps(doc, sort_keys=True, separators=(',', ':'))
        (root / 'realrl_replay.json').write_text(
            json.dumps({'body': doc, 'crc32': zlib.crc32(body.encode())}))
    elif kind == 'bad_marker':
        for slot in ('commit.0', 'commit.1'):
            data = bytearray((root / slot).read_bytes())
            data[30] ^= 0xFF
            (root / slot).write_bytes(bytes(data))
    elif kind == 'missing_marker':
        (root / 'commit.1').unlink()
    elif kind == 'missing_chunk':
        next((root / 'data' / 'obs' / 'image_0').glob('c.0.*')).unlink()
    elif kind == 'bad_shard_index':  # chunk 0's entry says "never written"
        shard = next((root / 'data' / 'obs' / 'image_0').glob('c.0.*'))
        with open(shard, 'r+b') as f:
            f.write(b'\xff' * 16)
    elif kind == 'cut_shard':
        shard = next((root / 'data' / 'obs' / 'image_0').glob('c.0.*'))
        os.truncate(shard, 4096 + 10)  # the index and 10 bytes of the first chunk
    elif kind == 'missing_array':
        (root / 'data' / 'reward' / 'zarr.json').unlink()


@pytest.mark.parametrize('kind, words', [
    ('foreign', 'not a realrl replay store'),
    ('missing_identity', 'not a realrl replay store'),
    ('bad_identity', 'corrupted'),
    ('other_format', 'not a realrl replay store'),
    ('bad_marker', 'corrupted'),
    ('missing_marker', 'commit.1 is missing'),
    ('missing_chunk', 'missing'),
    ('bad_shard_index', 'corrupted'),
    ('cut_shard', 'corrupted'),
    ('missing_array', "field 'reward'"),
])
def test_foreign_or_corrupted_folder_is_an_error_and_never_written(tmp_path, kind, words):
    root = tmp_path / 's'
    if kind == 'foreign':
        root.mkdir()
    else:
        with make_writer(root) as w:
            w.append(factory().make('a', np.arange(40)))
        (root / 'writer.lock').unlink()
    _corrupt(kind, root)
    before = tree_digest(root)
    with pytest.raises(StoreError, match=words) as e:
        ReplayWriter.open(root)
    assert str(root) in str(e.value)
    with pytest.raises(StoreError, match=words):
        ReplayReader(root).read(np.arange(40))
    assert tree_digest(root) == before


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(StoreError, match='no such folder'):
        ReplayWriter.open(tmp_path / 'nope')
    assert not (tmp_path / 'nope').exists()
