"""Read-only access to a store from any process: never writes, never takes the writer lock."""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from types import MappingProxyType
from typing import Iterable, Mapping

import numpy as np

from .errors import StoreError
from .layout import ChunkCodec, CommitMarker, chunk_name, field_dir
from .schema import FieldSpec, Schema
from .store import StoreInfo


class ReplayReader:
    """Follows the writer's commit marker; every row it returns is a whole committed row.

    Thread-safe. ``decoded_cache_bytes`` bounds an LRU of decoded chunks (complete chunks never
    change). Rows of incomplete chunks come from the commit marker, read whole by refresh().
    """

    def __init__(self, path: str | os.PathLike, decoded_cache_bytes: int = 64 << 20):
        if decoded_cache_bytes < 0:
            raise ValueError(f'decoded_cache_bytes must be >= 0, got {decoded_cache_bytes}')
        self.info = StoreInfo.load(path)
        self._codecs = {f.name: ChunkCodec(f) for f in self.info.schema.fields}
        self._folders = {f.name: field_dir(self.info.root, f) for f in self.info.schema.fields}
        self._lru: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._lru_bytes = 0
        self._lru_limit = decoded_cache_bytes
        self._lock = threading.Lock()
        self._marker = CommitMarker.read(self.info.root, self.info.identity.uuid,
                                        self.info.schema)

    @property
    def path(self):
        return self.info.root

    @property
    def schema(self) -> Schema:
        return self.info.schema

    @property
    def metadata(self) -> dict:
        return self.info.metadata

    @property
    def count(self) -> int:
        """Committed rows as of the last refresh()."""
        return self._marker.count

    @property
    def robot_names(self) -> tuple[str, ...]:
        """Robot name of each robot_id code."""
        return self._marker.robots

    @property
    def committed_seqs(self) -> Mapping[str, int]:
        return MappingProxyType(dict(zip(self._marker.robots, self._marker.seqs)))

    def refresh(self) -> int:
        """Re-read the commit marker; return the number of readable committed rows."""
        marker = CommitMarker.read(self.info.root, self.info.identity.uuid, self.info.schema)
        if marker.commit_id >= self._marker.commit_id:
            self._marker = marker
        return self._marker.count

    def read(self, indices: Iterable[int] | np.ndarray,
             fields: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Rows at ``indices`` (each in 0..count-1) as a dict of arrays, one per field."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        count = self.count
        if idx.size and (idx.min() < 0 or idx.max() >= count):
            raise IndexError(f'indices must be in [0, {count}) (the committed rows as of the '
                             f'last refresh); got min {idx.min()}, max {idx.max()}')
        marker = self._marker
        out = {}
        for spec in self._fields(fields):
            column = np.empty((idx.size, *spec.shape), spec.dtype)
            ks = idx // spec.chunk_rows
            complete = marker.count // spec.chunk_rows
            for k in np.unique(ks):
                mask = ks == k
                rows = idx[mask] - k * spec.chunk_rows
                if k < complete:
                    column[mask] = self.chunk(spec.name, int(k))[rows]
                else:
                    column[mask] = marker.tails[spec.name][rows]
            out[spec.name] = column
        return out

    def snapshot(self):
        """The commit marker of the last refresh: count, robots, seqs and tail rows."""
        return self._marker

    def read_range(self, start: int, stop: int,
                   fields: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Rows start..stop-1."""
        return self.read(np.arange(start, stop), fields)

    def chunk(self, field: str, k: int) -> np.ndarray:
        """Decoded complete chunk ``k`` of ``field`` (read-only array, LRU-cached)."""
        spec = self.info.schema.by_name[field]
        key = (field, k)
        with self._lock:
            hit = self._lru.get(key)
            if hit is not None:
                self._lru.move_to_end(key)
                return hit
        chunk = self.decode_chunk(spec, k)
        chunk.flags.writeable = False
        if chunk.nbytes <= self._lru_limit:
            with self._lock:
                if key not in self._lru:
                    self._lru[key] = chunk
                    self._lru_bytes += chunk.nbytes
                    while self._lru_bytes > self._lru_limit:
                        _, old = self._lru.popitem(last=False)
                        self._lru_bytes -= old.nbytes
        return chunk

    def decode_chunk(self, spec: FieldSpec, k: int, out: np.ndarray | None = None) -> np.ndarray:
        """Read and decode chunk ``k`` of ``spec`` from disk (into ``out`` if given)."""
        path = self._folders[spec.name] / chunk_name(spec, k)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f'{path}: chunk of committed rows is missing; the store is '
                             'corrupted') from None
        return self._codecs[spec.name].decode(data, path, out)

    def _fields(self, fields: Iterable[str] | None) -> list[FieldSpec]:
        if fields is None:
            return list(self.info.schema.fields)
        specs = []
        for name in fields:
            if name not in self.info.schema.by_name:
                raise KeyError(f'unknown field {name!r}; known: {sorted(self.schema.by_name)}')
            specs.append(self.info.schema.by_name[name])
        return specs
