"""Versioned, checksummed weight blobs cut into chunks, and their reassembly.

Pure Python: the learner node (and an edge bridge, for its site's policies) sends a blob
with ``send_blob``, paced to a bandwidth budget if it has one; the policy node feeds
arriving chunks to a ``BlobAssembler`` and swaps weights in only when a version is
complete and its CRC32 matches. A chunk of a newer version discards an older partial one.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

from realrl_common.pacing import TokenBucket

DEFAULT_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class Chunk:
    """One piece of a versioned weights blob, with the whole blob's size and CRC32."""

    version: int
    index: int
    count: int
    total_bytes: int
    crc32: int
    data: bytes


def chunk_blob(version: int, blob: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[Chunk]:
    """The blob of ``version`` cut into chunks of at most chunk_bytes (at least one)."""
    return list(iter_chunks(version, blob, chunk_bytes))


def iter_chunks(version: int, blob: bytes,
                chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[Chunk]:
    """``chunk_blob``'s chunks one at a time: each chunk's copy of its bytes is made when it
    is taken, so a version sent slowly (paced) holds one chunk besides the blob, not a
    second copy of the whole blob."""
    if chunk_bytes <= 0:
        raise ValueError(f'chunk_bytes must be > 0, got {chunk_bytes}')
    crc = zlib.crc32(blob)
    count = max(1, -(-len(blob) // chunk_bytes))
    for i in range(count):
        yield Chunk(version, i, count, len(blob), crc, blob[i * chunk_bytes:(i + 1) * chunk_bytes])


def budget(mbit_s: float, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> TokenBucket:
    """The token bucket of a weights stream's budget in Mbit/s (0: unpaced), one chunk of
    credit: chunks go one at a time, evenly spaced, so what waits behind one on the link
    waits for one chunk at most."""
    return TokenBucket(mbit_s * 1e6 / 8 if mbit_s else None, burst=chunk_bytes)


def send_blob(version: int, blob: bytes, send: Callable[[Chunk], None], *,
              chunk_bytes: int = DEFAULT_CHUNK_BYTES, bucket: TokenBucket | None = None,
              stop: Callable[[], bool] | None = None) -> float:
    """Hand the blob of ``version`` to ``send`` chunk by chunk, each once ``bucket`` lets its
    bytes go (None: at once); returns the seconds spent waiting for the budget. Once
    ``stop()`` is true no further chunk goes (a node shutting down does not wait for a
    paced version; receivers never apply the part that went).

    A weights stream paced this way leaves the rest of the link (observations, actions,
    transitions on the same DDS network) its share: a 400 MB actor sent unpaced fills a
    1 Gbit/s LAN for over 3 s."""
    waited = 0.0
    for chunk in iter_chunks(version, blob, chunk_bytes):
        if bucket is not None:
            waited += bucket.take(len(chunk.data))
        if stop is not None and stop():
            break
        send(chunk)
    return waited


@dataclass
class BlobAssembler:
    """Collects chunks; ``add`` returns (version, blob) once a newer version is whole."""

    current_version: int = 0
    rejected: int = 0
    _version: int = -1
    _parts: dict = field(default_factory=dict)
    _meta: tuple = ()

    def add(self, chunk: Chunk) -> tuple[int, bytes] | None:
        if chunk.version <= self.current_version or chunk.version < self._version:
            return None  # old news
        if not (0 <= chunk.index < chunk.count):
            self.rejected += 1
            return None
        if chunk.version != self._version:
            self._version, self._parts = chunk.version, {}
            self._meta = (chunk.count, chunk.total_bytes, chunk.crc32)
        if (chunk.count, chunk.total_bytes, chunk.crc32) != self._meta:
            self.rejected += 1
            return None
        self._parts[chunk.index] = chunk.data
        if len(self._parts) < chunk.count:
            return None
        blob = b''.join(self._parts[i] for i in range(chunk.count))
        self._parts = {}
        if len(blob) != chunk.total_bytes or zlib.crc32(blob) != chunk.crc32:
            self.rejected += 1
            return None
        self.current_version = chunk.version
        return chunk.version, blob
