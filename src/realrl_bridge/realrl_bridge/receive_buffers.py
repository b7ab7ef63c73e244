"""Memory that receives weight versions, reused once nothing uses it (no Zenoh, no torch).

A version is received into one buffer and its tensors are views of it. Memory a process
touches for the first time costs a page fault per 4 KiB page: on this project's VMs about
3 ms per MB, more than TLS over loopback takes to bring the bytes (about 2 ms per MB), so
a receiver that maps fresh memory for every version spends more time faulting than
receiving. ``ReceiveBuffers`` keeps the buffers of past versions (anonymous memory maps)
and hands one out again once nothing holds it.

Whether a buffer is in use is read from the map itself: every array made from it, and the
``Assembly`` writing into it, holds an export of its buffer, and a map with exports cannot
be resized (``mmap.resize`` raises ``BufferError``). A buffer given back while its version's
tensors are alive is therefore never handed out until they are gone. Reused memory holds
the old version's bytes until every chunk of the new one is written over it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import threading

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3        # glibc's mallopt parameters
_heap_kept = []


def keep_chunk_memory(mmap_above: int = 4 << 20, trim_above: int = 128 << 20) -> bool:
    """Let the C heap keep the memory of chunk-sized buffers (glibc; False elsewhere).

    Each chunk passes through a few 1 MiB buffers (the bytes gathered to send, Zenoh's
    copy, the bytes received). glibc maps a buffer that large afresh and unmaps it when
    freed, or trims the heap under it, so every chunk paid page faults again: 2.4 ms per
    MiB for a ``ZBytes`` and its ``to_bytes()`` here, 0.16 ms with this. Buffers under
    ``mmap_above`` come from the heap, which keeps up to ``trim_above`` bytes free.
    Process-wide and idempotent (the first call sets it)."""
    if _heap_kept:
        return _heap_kept[0]
    name = ctypes.util.find_library('c')
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    ok = bool(mallopt and mallopt(_M_MMAP_THRESHOLD, mmap_above)
              and mallopt(_M_TRIM_THRESHOLD, trim_above))
    _heap_kept.append(ok)
    return ok


def in_use(buf: mmap.mmap) -> bool:
    """True while an array or a memoryview of ``buf`` exists (or the map is closed)."""
    if buf.closed:
        return True
    try:
        buf.resize(len(buf))          # same size: a no-op, refused while exports exist
    except (BufferError, OSError, SystemError, ValueError):
        return True
    return False


class ReceiveBuffers:
    """A pool of receive buffers; keeps at most ``keep`` of them (the newest given back).

    ``keep=2`` is what a receiver of successive versions needs: the buffer of the version
    in use and that of the one before it (free once the consumer drops it), which the
    next version reuses. The memory kept is at most ``keep`` buffers; ``keep=0`` reuses
    nothing (every version gets fresh memory)."""

    def __init__(self, keep: int = 2):
        if keep < 0:
            raise ValueError(f'keep must be >= 0 buffers, got {keep}')
        self.keep = keep
        self._given: list[mmap.mmap] = []
        self._lock = threading.Lock()
        self.reused = 0
        """Buffers handed out again (each saved mapping fresh memory)."""
        self.mapped = 0
        """Buffers mapped fresh."""

    def take(self, nbytes: int) -> mmap.mmap | bytearray:
        """A writable buffer of exactly ``nbytes`` (an empty bytearray for 0)."""
        if nbytes == 0:
            return bytearray()
        with self._lock:
            for i, buf in enumerate(self._given):
                if len(buf) == nbytes and not in_use(buf):
                    self.reused += 1
                    return self._given.pop(i)
            self.mapped += 1
        return mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)

    def give(self, buf: mmap.mmap | bytearray) -> None:
        """Offer ``buf`` for reuse (it may still be in use: it is checked when taken)."""
        if not isinstance(buf, mmap.mmap) or self.keep == 0:
            return
        with self._lock:
            if any(b is buf for b in self._given):
                return
            self._given.append(buf)
            del self._given[:-self.keep]   # dropped ones are unmapped once unused
