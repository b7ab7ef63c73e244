"""Page cache of a folder's files, for benchmarks that time cold opens.

``drop(folder)`` evicts the folder's files from the page cache one file at a time: fsync
(dirty pages cannot be dropped), then ``posix_fadvise(POSIX_FADV_DONTNEED)``. It touches only
these files, so the other processes on the machine keep their cache. It does not drop the
kernel's directory-entry and inode caches; ``drop_all()`` (root only) writes 3 to
/proc/sys/vm/drop_caches, which drops those too, for the whole machine.
``resident_bytes(folder)`` counts the bytes of the folder's files in the page cache (mincore),
so a bench can show that a drop worked.
"""
from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte))


def _files(folder: Path):
    return sorted(p for p in Path(folder).rglob('*') if p.is_file())


def drop(folder: Path) -> int:
    """Evict every file under folder from the page cache; returns the number of files."""
    files = _files(folder)
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return len(files)


def drop_all() -> None:
    """Drop the page cache, dentries and inodes of the whole machine (needs root)."""
    os.sync()
    with open('/proc/sys/vm/drop_caches', 'w') as f:
        f.write('3\n')


def warm(folder: Path) -> int:
    """Read every file under folder once (into the page cache); returns the bytes read."""
    total = 0
    for path in _files(folder):
        with open(path, 'rb') as f:
            while chunk := f.read(8 << 20):
                total += len(chunk)
    return total


def resident_bytes(folder: Path) -> int:
    """Bytes of the files under folder that are in the page cache now (mincore on a private
    mapping: pages not written through it report the file's cache)."""
    page = mmap.PAGESIZE
    total = 0
    for path in _files(folder):
        size = path.stat().st_size
        if size == 0:
            continue
        pages = (size + page - 1) // page
        vec = (ctypes.c_ubyte * pages)()
        with open(path, 'rb') as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as mm:
            view = ctypes.c_char.from_buffer(mm)
            try:
                if _libc.mincore(ctypes.addressof(view), size, vec) != 0:
                    raise OSError(ctypes.get_errno(), f'mincore failed on {path}')
            finally:
                del view  # the mapping cannot close while ctypes holds it
        total += min(size, sum(v & 1 for v in vec) * page)
    return total
