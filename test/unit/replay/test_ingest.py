"""Pipelined and boundary commits, and next_obs images stored once (linked to the next obs)."""
import numpy as np
import pytest
from _replay_fixtures import SMALL, factory, make_writer, small_schema

from realrl_replay import (
    LINK,
    ReplayReader,
    ReplayWriter,
    Sampler,
    SamplerConfig,
    StoreConfig,
    StoreError,
    WriterConfig,
)

ROBOTS = ('a', 'b', 'c')


def interleaved(fac, n, seed=0, burst=5):
    """N transitions of ROBOTS in random bursts, as messages arrive at the node."""
    rng = np.random.default_rng(seed)
    nxt = {r: 0 for r in ROBOTS}
    out = []
    while sum(nxt.values()) < n:
        r = ROBOTS[rng.integers(len(ROBOTS))]
        k = int(rng.integers(1, burst + 1))
        out.append(fac.make(r, np.arange(nxt[r], nxt[r] + k)))
        nxt[r] += k
    return out


def fill(writer, parts, rng):
    for cols in parts:
        writer.append(cols)
        if rng.random() < 0.3:
            writer.commit_async(boundary=bool(rng.integers(2)))
    writer.commit()


def encoded_bytes(shard) -> int:
    """Bytes of the chunks in a shard file (without the index and the 4 KiB alignment)."""
    index = np.frombuffer(shard.read_bytes()[:SMALL.max_shard_chunks * 16], '<u8').reshape(-1, 2)
    return int(index[index[:, 0] != np.iinfo(np.uint64).max, 1].sum())


def test_linked_next_obs_images_read_back_identical_and_take_less_space(tmp_path):
    fac = factory(next_images=True, episode_len=9)
    parts = interleaved(fac, 600)
    sizes, rows = {}, {}
    for dedup in (True, False):
        root = tmp_path / str(dedup)
        cfg = StoreConfig(**{**vars(SMALL), 'dedup_next_obs': dedup})
        with make_writer(root, store_config=cfg, schema=small_schema(True)) as w:
            assert bool(w.schema.links) == dedup
            fill(w, parts, np.random.default_rng(1))
        r = ReplayReader(root)
        rows[dedup] = r.read_range(0, r.count)
        assert LINK not in rows[dedup]
        assert fac.check(rows[dedup], r.robot_names).all()
        sizes[dedup] = sum(encoded_bytes(p) for p in (root / 'data' / 'next_obs').rglob('c.*'))
        if dedup:
            flags = r.read_range(0, r.count, [LINK])[LINK]
            assert 0.4 < (flags == 3).mean() < 0.95  # both cameras linked on most rows
    for name in rows[True]:
        np.testing.assert_array_equal(rows[True][name], rows[False][name], err_msg=name)
    assert sizes[True] < 0.6 * sizes[False]


def test_sampler_batches_resolve_links(tmp_path):
    fac = factory(next_images=True, episode_len=7)
    root = tmp_path / 's'
    with make_writer(root, schema=small_schema(True)) as w:
        fill(w, interleaved(fac, 500, seed=2), np.random.default_rng(2))
    row_bytes = ReplayReader(root).schema.row_bytes
    for fields in (None, ('next_obs/image_0', 'robot_id', 'seq')):  # with and without the twin
        with Sampler(root, SamplerConfig(cache_bytes=200 * row_bytes, seed=0, fields=fields,
                                         swaps_per_batch=4)) as s:
            for _ in range(10):
                b = s.sample(64)
                for i in range(64):
                    robot = s.robot_names[b['robot_id'][i]]
                    expect = fac.make(robot, [b['seq'][i]])
                    for name in ('next_obs/image_0',) + (('obs/image_1',) if fields is None
                                                          else ()):
                        np.testing.assert_array_equal(b[name][i], expect[name][0])


def test_commit_async_overlaps_appends_and_keeps_commit_order(tmp_path):
    fac = factory()
    root = tmp_path / 's'
    with make_writer(root) as w:
        futures = []
        for i in range(12):
            w.append(fac.make('a', np.arange(10 * i, 10 * i + 10)))
            futures.append(w.commit_async())
        infos = [f.result() for f in futures]
        assert [i.count for i in infos] == sorted(i.count for i in infos)
        assert infos[-1].count == 120 and w.committed_seq('a') == 119
    r = ReplayReader(root)
    assert r.read_range(0, 120, ['seq'])['seq'].tolist() == list(range(120))


def test_boundary_commit_keeps_image_rows_out_of_the_marker(tmp_path):
    fac = factory()
    with make_writer(tmp_path / 's') as w:
        b = w.boundary_rows
        assert b == w.schema.by_name['obs/image_0'].chunk_rows
        w.append(fac.make('a', np.arange(b + 5)))
        info = w.commit_async(boundary=True).result()
        assert info.count == b and w.pending == 5 and info.seqs['a'] == b - 1
        marker = ReplayReader(tmp_path / 's').snapshot()
        assert len(marker.tails['obs/image_0']) == 0
        w.append(fac.make('a', np.arange(b + 5, b + 7)))  # no boundary passed: takes all
        assert w.commit_async(boundary=True).result().count == b + 7


def test_a_failed_commit_stops_the_writer_until_reopened(tmp_path, monkeypatch):
    import realrl_replay.shards as shards
    fac = factory()
    root = tmp_path / 's'
    w = make_writer(root)
    w.append(fac.make('a', np.arange(10)))
    w.commit()

    def broken(*args):
        raise OSError('disk full')
    monkeypatch.setattr(shards.ShardWriter, 'append', broken)
    w.append(fac.make('a', np.arange(10, 80)))
    with pytest.raises(OSError, match='disk full'):
        w.commit()
    with pytest.raises(StoreError, match='reopen'):
        w.append(fac.make('a', [80]))
    w.close()
    monkeypatch.undo()
    with ReplayWriter.open(root, WriterConfig(fsync=False)) as w:
        assert w.count == 10 and w.committed_seq('a') == 9
