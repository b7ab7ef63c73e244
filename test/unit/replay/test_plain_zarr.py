"""What a reader with Zarr alone sees: the committed rows, every one readable, and a shape that
follows them, after a run, while it runs, and after SIGKILLs of the writer at random moments.

Everything is read with ``zarr.open_group``; the commit marker (through ReplayReader) is only
the truth it is compared against.
"""
import multiprocessing as mp
import os
import random
import time

import numpy as np
import pytest
import zarr
from _replay_fixtures import factory, make_writer, small_schema

from realrl_replay import ReplayReader, ReplayWriter, WriterConfig
from realrl_replay.pixel_delta import register_zarr_codec


def plain_view(root):
    """(group attributes, {array path: array}) of ``root/data`` read with plain Zarr."""
    register_zarr_codec()  # what a user of zarr alone does to decode the image fields
    group = zarr.open_group(str(root / 'data'), mode='r')
    arrays = {path: node for path, node in group.members(max_depth=None)
              if isinstance(node, zarr.Array)}
    return dict(group.attrs), arrays


def plain_rows(attrs, arrays, n):
    """Rows 0..n-1 as a plain reader following the group's documented attributes gets them:
    linked next_obs images are taken from the twin of the robot's next row in the block."""
    rows = {name: array[:n] for name, array in arrays.items()}
    links, block = attrs['next_obs_links'], attrs['link_block_rows']
    for name, link in links.items():
        codes, bits = rows['robot_id'], rows['_next_obs_link']
        for p in np.flatnonzero(bits & link['bit']).tolist():
            end = min(n, (p // block + 1) * block)
            later = np.flatnonzero(codes[p + 1:end] == codes[p])
            assert later.size, f'{name} row {p} is linked to no row in the plain view'
            rows[name][p] = rows[link['twin']][p + 1 + later[0]]
    return rows


def assert_plain_view_true(root, fac, expect_rows=None):
    """Every array is at least committed_rows long, no longer than the commit marker
    counts, and its rows up to the shortest array equal the transitions written."""
    attrs, arrays = plain_view(root)
    marker_count = ReplayReader(root).count
    n = attrs['committed_rows']
    shapes = {name: a.shape[0] for name, a in arrays.items()}
    assert n <= min(shapes.values()) and max(shapes.values()) <= marker_count, (n, shapes)
    if expect_rows is not None:
        assert n == expect_rows and set(shapes.values()) == {n}, (n, shapes)
    visible = min(shapes.values())
    if visible:
        rows = plain_rows(attrs, arrays, visible)
        assert fac.check(rows, attrs['robots']).all()
    return n


@pytest.mark.parametrize('next_images', [False, True])
def test_after_a_run_plain_zarr_sees_every_committed_row_and_the_shape_follows(
        tmp_path, next_images):
    fac = factory(next_images)
    with make_writer(tmp_path / 's', schema=small_schema(next_images)) as w:
        for i in range(7):  # partial last chunks in every field: 3 robots, 29 rows a commit
            for robot in ('a', 'b', 'c'):
                w.append(fac.make(robot, np.arange(10 * i, 10 * i + (9 if robot == 'c' else 10))))
            w.commit()
    count = ReplayReader(tmp_path / 's').count
    assert count == 7 * 29 and any(count % spec.chunk_rows for spec in w.schema.fields)
    assert_plain_view_true(tmp_path / 's', fac, expect_rows=count)
    attrs, arrays = plain_view(tmp_path / 's')
    assert arrays['reward'][:].shape == (count,)  # arr[:] reads the rows, not a capacity


@pytest.mark.parametrize('next_images', [False, True])
def test_a_live_plain_view_follows_the_commits_at_its_interval_and_at_close(
        tmp_path, next_images):
    fac = factory(next_images)
    root = tmp_path / 's'
    make_writer(root, schema=small_schema(next_images)).close()
    image_rows = make_writer(tmp_path / 'x', schema=small_schema()).schema.by_name[
        'obs/image_0'].chunk_rows

    def live(count):  # with next_obs links: the rows in complete image chunks
        return count // image_rows * image_rows if next_images else count

    with ReplayWriter.open(root, WriterConfig(fsync=False, plain_view_interval_s=0)) as w:
        for i in range(6):  # interval 0: at every commit
            w.append(fac.make('a', np.arange(11 * i, 11 * i + 11)))
            w.append(fac.make('b', np.arange(6 * i, 6 * i + 6)))
            info = w.commit()
            assert_plain_view_true(root, fac, expect_rows=live(info.count))
    assert_plain_view_true(root, fac, expect_rows=102)  # close shows every row
    with ReplayWriter.open(root, WriterConfig(fsync=False, plain_view_interval_s=3600)) as w:
        assert_plain_view_true(root, fac, expect_rows=live(102))
        for i in range(6, 12):  # an interval never reached: the view stays where open left
            w.append(fac.make('a', np.arange(11 * i, 11 * i + 11)))  # it, and stays true
            w.append(fac.make('b', np.arange(6 * i, 6 * i + 6)))    # while chunks complete
            w.commit()
            assert_plain_view_true(root, fac, expect_rows=live(102))
    assert_plain_view_true(root, fac, expect_rows=204)  # and close brings it up to date


def test_superseded_partial_chunks_give_their_space_back(tmp_path):
    fac = factory()
    root = tmp_path / 's'
    make_writer(root).close()
    with ReplayWriter.open(root, WriterConfig(fsync=False, plain_view_interval_s=0)) as w:
        for seq in range(60):  # one row a commit: a new partial version of every field
            w.append(fac.make('a', [seq]))
            w.commit()
        spec = w.schema.by_name['obs/image_0']
    shard = root / 'data' / 'obs' / 'image_0' / 'c.0.0.0.0'
    st = os.stat(shard)
    chunk_bytes = spec.chunk_rows * spec.row_bytes
    assert st.st_size > 20 * 4096  # the versions were appended one after the other ...
    assert st.st_blocks * 512 <= 3 * chunk_bytes + 8 * 4096  # ... and all but ~2 punched out
    assert_plain_view_true(root, fac, expect_rows=60)


def _writer_child(root, seed):
    fac = factory(True)
    rnd = random.Random(seed)
    # no fsync: a SIGKILL leaves the page cache, so what was written is what a reader reads
    writer = ReplayWriter.open(root, WriterConfig(fsync=False, plain_view_interval_s=0))
    seqs = {r: writer.committed_seq(r) + 1 for r in ('a', 'b')}
    while True:
        for _ in range(rnd.randint(1, 4)):
            robot = rnd.choice('ab')
            n = rnd.randint(1, 13)
            writer.append(fac.make(robot, np.arange(seqs[robot], seqs[robot] + n)))
            seqs[robot] += n
        writer.commit_async(boundary=rnd.random() < 0.5)


def test_after_sigkills_plain_zarr_sees_only_true_rows_and_recovery_brings_it_up_to_date(
        tmp_path):
    fac = factory(True)
    root = tmp_path / 's'
    make_writer(root, schema=small_schema(True)).close()
    ctx = mp.get_context('fork')
    rnd = random.Random(3)
    seen = []
    for kill in range(8):
        proc = ctx.Process(target=_writer_child, args=(root, kill), daemon=True)
        proc.start()
        time.sleep(rnd.uniform(0.3, 0.9))
        proc.kill()  # SIGKILL, at whatever the writer was doing
        proc.join()
        seen.append(assert_plain_view_true(root, fac))  # crashed, not yet recovered
    print('plain rows after each kill:', seen)
    assert max(seen) > 0  # (a kill during the next open's recovery may show fewer rows)
    ReplayWriter.open(root, WriterConfig(fsync=True)).close()  # recovery, then a clean close
    assert_plain_view_true(root, fac, expect_rows=ReplayReader(root).count)
