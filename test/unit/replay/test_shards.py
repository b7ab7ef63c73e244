"""Shard files on their own: round trip, reopening after an interrupted commit, and file
systems that refuse O_DIRECT."""
import errno
import fcntl
import os

import numpy as np
import pytest

from realrl_replay import StoreError
from realrl_replay.shards import ALIGN, EMPTY, ShardWriter, index_bytes, read_chunk


def chunks(n):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, int(rng.integers(1, 3 * ALIGN)), np.uint8).tobytes()
            for _ in range(n)]


def write(path, blobs, size=8, fsync=False):
    shard = ShardWriter(path, size)
    for i, blob in enumerate(blobs):
        shard.append(i, blob)
    shard.flush(fsync)
    shard.close()


def test_chunks_read_back_at_aligned_offsets(tmp_path):
    path, data = tmp_path / 'c.0.0', chunks(5)
    write(path, data, fsync=True)
    for i, blob in enumerate(data):
        assert read_chunk(path, 8, i) == blob
    index = np.frombuffer(path.read_bytes()[:8 * 16], '<u8').reshape(8, 2)
    assert (index[:5, 0] % ALIGN == 0).all() and index[0, 0] == index_bytes(8)
    assert (index[5:] == EMPTY).all()
    with pytest.raises(StoreError, match='never written'):
        read_chunk(path, 8, 5)


def test_reopening_drops_chunks_no_commit_counted(tmp_path):
    path, data = tmp_path / 'c.0.0', chunks(4)
    write(path, data[:3])
    end_of_first = -(-(index_bytes(8) + len(data[0])) // ALIGN) * ALIGN
    shard = ShardWriter(path, 8, committed=1)  # the marker counts chunk 0 only
    shard.flush(fsync=False)
    assert path.stat().st_size == end_of_first
    with pytest.raises(StoreError, match='never written'):
        read_chunk(path, 8, 1)
    shard.append(1, data[3])  # the next commit writes chunk 1 again, after chunk 0
    shard.flush(fsync=False)
    shard.close()
    assert read_chunk(path, 8, 0) == data[0] and read_chunk(path, 8, 1) == data[3]


def test_a_committed_chunk_outside_the_file_is_corruption(tmp_path):
    path, data = tmp_path / 'c.0.0', chunks(2)
    write(path, data)
    os.truncate(path, index_bytes(8) + 1)
    with pytest.raises(StoreError, match='corrupted'):
        ShardWriter(path, 8, committed=2)
    with pytest.raises(StoreError, match='cut short'):
        read_chunk(path, 8, 0)


@pytest.mark.parametrize('refused_at', ['open', 'write'])
def test_without_o_direct_chunks_are_written_through_the_cache(tmp_path, monkeypatch, refused_at):
    """Some file systems refuse O_DIRECT at open (older tmpfs), some devices refuse its
    alignment at the first write: both give EINVAL, and the shard falls back to plain writes."""
    import realrl_replay.shards as shards
    real_open, real_pwrite = os.open, os.pwrite

    def fake_open(path, flags, *args):
        if flags & os.O_DIRECT and refused_at == 'open':
            raise OSError(errno.EINVAL, 'Invalid argument')
        return real_open(path, flags, *args)

    def fake_pwrite(fd, data, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, 'Invalid argument')
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(shards.os, 'open', fake_open)
    monkeypatch.setattr(shards.os, 'pwrite', fake_pwrite)
    path, data = tmp_path / 'c.0.0', chunks(3)
    shard = ShardWriter(path, 4)
    for i, blob in enumerate(data):
        shard.append(i, blob)
    shard.flush(fsync=True)
    assert not shard._direct  # fell back
    shard.close()
    monkeypatch.undo()
    assert [read_chunk(path, 4, i) for i in range(3)] == data
