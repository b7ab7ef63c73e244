"""Shard files (format 3): many chunks of one field in one file, a Zarr v3 shard.

A shard file holds chunks ``j*S .. j*S+S-1`` of one field (S = ``FieldSpec.shard_chunks``).
Its layout is Zarr's ``sharding_indexed`` codec with ``index_location: start`` and an index
of plain little-endian u64 pairs (no checksum):

    [index: S x (offset, nbytes), 2**64-1 for a chunk not written][zero padding to 4 KiB]
    [chunk][padding to 4 KiB][chunk][padding] ...

Chunks are appended in order at 4 KiB-aligned offsets, so the writer can write them with
O_DIRECT: the encoded bytes go from one reused, aligned buffer to the disk without being
copied into (and later evicted from) the page cache. Where the file system refuses O_DIRECT
(tmpfs), plain writes are used. The index is rewritten in place after the chunks and the file
is fdatasync-ed before the commit marker that counts them, as chunk files were. A chunk's
index entry never changes once a commit counted it, so a torn index write leaves committed
entries intact; entries of uncommitted chunks are reset by recovery.

Why shards: a file per chunk cost a file creation (and its folder's fsync) per chunk, and on
ext4 without a journal creating a file scans every inode deleted in the last minutes, which at
5,000 transitions/s took up to a sixth of the CPU. A shard is created once per S chunks.
"""
from __future__ import annotations

import errno
import mmap
import os
import struct
import threading
from pathlib import Path

import numpy as np

from .errors import StoreError

ALIGN = 4096
EMPTY = np.iinfo(np.uint64).max
_local = threading.local()


def aligned(nbytes: int) -> int:
    """``nbytes`` rounded up to ALIGN: what a chunk of that size takes in a shard."""
    return -(-nbytes // ALIGN) * ALIGN


def index_bytes(chunks: int) -> int:
    """Bytes of a shard's index region (the index, padded to ALIGN)."""
    return aligned(chunks * 16)


def _aligned(slot: str, nbytes: int) -> mmap.mmap:
    """A reused, page-aligned buffer of at least ``nbytes`` for this thread."""
    buf = getattr(_local, slot, None)
    if buf is None or len(buf) < nbytes:
        buf = mmap.mmap(-1, max(nbytes, 1 << 20))
        setattr(_local, slot, buf)
    return buf


class ShardWriter:
    """Appends chunks to one shard file; ``flush`` makes them durable."""

    def __init__(self, path: Path, chunks: int, committed: int = 0):
        """Open (or create) ``path``; chunks ``committed``.. of an existing file are dropped
        (a crash left them uncounted). StoreError if a committed chunk's entry is bad."""
        self.path, self.chunks = path, chunks
        self.created = not path.exists()
        self._direct = hasattr(os, 'O_DIRECT')
        self._fd = self._open()
        self._index = np.full((chunks, 2), EMPTY, np.uint64)
        self.end = index_bytes(chunks)
        self.dirty = self.created
        if not self.created:
            self._load(committed)

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT
        if self._direct:
            try:
                return os.open(self.path, flags | os.O_DIRECT, 0o644)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                self._direct = False  # e.g. tmpfs
        return os.open(self.path, flags, 0o644)

    def _load(self, committed: int) -> None:
        self._index[:], size = _read_index(self.path, self.chunks)
        check_entries(self.path, self.chunks, 0, committed, (self._index, size))
        for offset, nbytes in self._index[:committed].tolist():
            self.end = max(self.end, aligned(offset + nbytes))
        if (self._index[committed:] != EMPTY).any() or size > self.end:
            self._index[committed:] = EMPTY  # left by a commit that never wrote its marker
            os.ftruncate(self._fd, self.end)
            self.dirty = True

    def entry(self, i: int) -> tuple[int, int]:
        return int(self._index[i, 0]), int(self._index[i, 1])

    def append(self, i: int, data) -> None:
        """Write chunk ``i`` (of this shard) after the last one."""
        view = memoryview(data).cast('B')
        n = len(view)
        padded = aligned(n)
        buf = _aligned('chunk', padded)
        buf[:n] = view
        buf[n:padded] = bytes(padded - n)
        self._pwrite(memoryview(buf)[:padded], self.end)
        self._index[i] = (self.end, n)
        self.end += padded
        self.dirty = True

    def flush(self, fsync: bool) -> None:
        """Write the index, then fdatasync the file (chunks and index)."""
        if not self.dirty:
            return
        size = index_bytes(self.chunks)
        buf = _aligned('index', size)
        raw = self._index.astype('<u8').tobytes()
        buf[:len(raw)] = raw
        buf[len(raw):size] = bytes(size - len(raw))
        self._pwrite(memoryview(buf)[:size], 0)
        if fsync:
            os.fdatasync(self._fd)
        self.dirty = False

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _pwrite(self, view: memoryview, offset: int) -> None:
        try:
            _pwrite_all(self._fd, view, offset)
        except OSError as e:
            if e.errno != errno.EINVAL or not self._direct:
                raise
            os.close(self._fd)  # the device wants another alignment: write through the cache
            self._direct = False
            self._fd = self._open()
            _pwrite_all(self._fd, view, offset)


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


def _read_index(path: Path, chunks: int) -> tuple[np.ndarray, int]:
    """(index, file size) of a shard; entries of an index cut short read as not written."""
    fd = os.open(path, os.O_RDONLY)  # not O_DIRECT: its reads would need aligned buffers
    try:
        size = os.fstat(fd).st_size
        raw = os.pread(fd, chunks * 16, 0)
    finally:
        os.close(fd)
    index = np.full((chunks, 2), EMPTY, np.uint64)
    whole = len(raw) // 16
    index[:whole] = np.frombuffer(raw[:whole * 16], '<u8').reshape(whole, 2)
    return index, size


def check_entries(path: Path, chunks: int, lo: int, hi: int, loaded=None) -> None:
    """StoreError unless chunks lo..hi-1 of the shard have entries inside the file."""
    index, size = loaded or _read_index(path, chunks)
    for i in range(lo, hi):
        offset, nbytes = int(index[i, 0]), int(index[i, 1])
        if offset == EMPTY or offset < index_bytes(chunks) or offset + nbytes > size:
            raise StoreError(f'{path}: index entry of committed chunk {i} is missing or out '
                             f'of the file ({offset}, {nbytes}, file of {size} bytes); the '
                             'store is corrupted')


def read_entry(path: Path, chunks: int, i: int, fd: int | None = None) -> tuple[int, int]:
    """(offset, nbytes) of chunk ``i`` of shard ``path``; StoreError if it was never written."""
    own = fd is None
    if own:
        fd = os.open(path, os.O_RDONLY)
    try:
        raw = os.pread(fd, 16, 16 * i)
    finally:
        if own:
            os.close(fd)
    if len(raw) != 16:
        raise StoreError(f'{path}: shard index is cut short (chunk {i}); the store is corrupted')
    offset, nbytes = struct.unpack('<QQ', raw)
    if offset == EMPTY or nbytes == EMPTY or offset < index_bytes(chunks):
        raise StoreError(f'{path}: chunk {i} of the shard was never written; the store is '
                         'corrupted')
    return offset, nbytes


def read_chunk(path: Path, chunks: int, i: int) -> bytes:
    """The encoded bytes of chunk ``i`` of shard ``path`` (FileNotFoundError if the shard is
    gone; StoreError if the entry is missing or points outside the file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        offset, nbytes = read_entry(path, chunks, i, fd)
        data = os.pread(fd, nbytes, offset)
    finally:
        os.close(fd)
    if len(data) != nbytes:
        raise StoreError(f'{path}: chunk {i} of the shard is cut short ({len(data)} of '
                         f'{nbytes} bytes); the store is corrupted')
    return data


_PUNCH_HOLE = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (linux/falloc.h)


def punch_hole(path: Path, offset: int, length: int) -> bool:
    """Give the disk space of ``offset .. offset+length`` of ``path`` back (it reads as zeros
    afterwards; the file keeps its size). False where the file system or libc cannot (the
    bytes then stay, unreferenced) or the file is gone."""
    import ctypes
    import ctypes.util

    libc = getattr(_local, 'libc', None) or ctypes.CDLL(ctypes.util.find_library('c'),
                                                          use_errno=True)
    _local.libc = libc
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        fallocate = getattr(libc, 'fallocate', None)
        if fallocate is None:
            return False
        fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
        return fallocate(fd, _PUNCH_HOLE, offset, length) == 0
    finally:
        os.close(fd)
