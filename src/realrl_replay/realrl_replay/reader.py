"""Read-only access to a store from any process: never writes, never takes the writer lock."""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from types import MappingProxyType
from typing import Iterable, Mapping

import numpy as np

from realrl_common.transition import decode_text

from .errors import RowsEvictedError, StoreError
from .layout import ChunkCodec, CommitMarker, chunk_name, field_dir
from .schema import LINK, ROBOT_ID, FieldSpec, Schema
from .shards import read_chunk
from .store import StoreInfo

EPISODE = 'episode_id'


class ReplayReader:
    """Follows the writer's commit marker; every row it returns is a whole committed row.

    Thread-safe. ``decoded_cache_bytes`` bounds an LRU of decoded chunks (complete chunks never
    change). Rows of incomplete chunks come from the commit marker, read whole by refresh().
    Rows below ``first`` were evicted by retention; rows of evicted episodes above it are still
    readable but not ``valid`` (samplers skip them).
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
        self._marker = self.info.read_marker()

    @property
    def path(self):
        return self.info.root

    @property
    def schema(self) -> Schema:
        return self.info.schema

    @property
    def metadata(self) -> dict:
        """Per-run metadata written at creation (robot descriptions, source, config...)."""
        return self.info.metadata

    @property
    def count(self) -> int:
        """Rows ever committed as of the last refresh() (row indices are 0..count-1)."""
        return self._marker.count

    @property
    def first(self) -> int:
        """First row not evicted by retention."""
        return self._marker.first

    @property
    def robot_names(self) -> tuple[str, ...]:
        """Robot name of each robot_id code."""
        return self._marker.robots

    @property
    def committed_seqs(self) -> Mapping[str, int]:
        return MappingProxyType(dict(zip(self._marker.robots, self._marker.seqs)))

    @property
    def min_episode(self) -> Mapping[str, int]:
        """Per robot, the lowest episode_id not evicted."""
        return MappingProxyType(dict(zip(self._marker.robots, self._marker.min_episode)))

    def refresh(self) -> int:
        """Re-read the commit marker; return the number of committed rows."""
        marker = self.info.read_marker()
        if marker.commit_id >= self._marker.commit_id:
            self._marker = marker
        return self._marker.count

    def snapshot(self) -> CommitMarker:
        """The commit marker of the last refresh: count, robots, seqs, tail rows, watermark."""
        return self._marker

    def read(self, indices: Iterable[int] | np.ndarray, fields: Iterable[str] | None = None,
             marker: CommitMarker | None = None) -> dict[str, np.ndarray]:
        """Rows at ``indices`` (each in first..count-1) as a dict of arrays, one per field
        (by default every field but the internal link field). ``marker``: read as of that
        commit instead of the last refresh."""
        marker = marker or self._marker
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < marker.first or idx.max() >= marker.count):
            if idx.max() < marker.count:
                raise RowsEvictedError(f'{self.path}: rows below {marker.first} were evicted by '
                                       f'retention (asked for row {idx.min()})')
            raise IndexError(f'indices must be in [{marker.first}, {marker.count}) (the '
                             f'committed rows as of the last refresh); got min {idx.min()}, '
                             f'max {idx.max()}')
        out = {}
        for spec in self._fields(fields):
            out[spec.name] = self._column(spec, idx, marker)
        return out

    def read_range(self, start: int, stop: int, fields: Iterable[str] | None = None,
                   marker: CommitMarker | None = None) -> dict[str, np.ndarray]:
        """Rows start..stop-1."""
        return self.read(np.arange(start, stop), fields, marker)

    def read_text(self, indices, field: str = 'instruction') -> list[str]:
        """The strings of a text field (``TransitionField(text=True)``, e.g. the language
        instruction: UTF-8 bytes zero-padded in a uint8 column) at ``indices``."""
        return [decode_text(row) for row in self.read(indices, [field])[field]]

    def valid(self, indices, marker: CommitMarker | None = None) -> np.ndarray:
        """Per row: not evicted (at or above ``first``, and its episode not evicted)."""
        marker = marker or self._marker
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        ok = (idx >= marker.first) & (idx < marker.count)
        if ok.any() and marker.min_episode and EPISODE in self.schema.by_name:
            rows = self.read(idx[ok], [ROBOT_ID, EPISODE], marker)
            bound = np.asarray(marker.min_episode + (0,) * (len(marker.robots)
                                                             - len(marker.min_episode)))
            ok[ok] = rows[EPISODE] >= bound[rows[ROBOT_ID]]
        return ok

    def valid_count(self) -> int:
        """Rows not evicted, as of the last refresh (reads the episode ids once per call
        when episodes were evicted)."""
        marker = self._marker
        if not marker.min_episode or EPISODE not in self.schema.by_name:
            return marker.count - marker.first
        total = 0
        for lo in range(marker.first, marker.count, 1 << 16):
            total += int(self.valid(np.arange(lo, min(marker.count, lo + (1 << 16))),
                                    marker).sum())
        return total

    def chunk(self, field: str, k: int) -> np.ndarray:
        """Decoded complete chunk ``k`` of ``field`` as stored (read-only array, LRU-cached;
        linked next_obs rows are zeros here, see ``read``)."""
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
        try:
            if spec.shard_chunks:
                shard, i = divmod(k, spec.shard_chunks)
                path = self._folders[spec.name] / chunk_name(spec, shard)
                data = read_chunk(path, spec.shard_chunks, i)
            else:
                path = self._folders[spec.name] / chunk_name(spec, k)
                data = path.read_bytes()
        except FileNotFoundError:
            latest = self.info.read_marker()
            if (k + 1) * spec.chunk_rows <= latest.first:
                raise RowsEvictedError(f'{path}: rows below {latest.first} were evicted by '
                                       'retention') from None
            raise StoreError(f'{path}: chunk of committed rows is missing; the store is '
                             'corrupted') from None
        return self._codecs[spec.name].decode(data, path, out)

    def resolve_links(self, spec: FieldSpec, first_row: int, rows: np.ndarray,
                      marker: CommitMarker, twin: np.ndarray | None = None) -> None:
        """Put back, in ``rows`` (rows first_row.. of linked field ``spec``, as stored, all in
        complete chunks, starting at a block boundary), the images stored as links: the
        ``obs`` twin of the same robot's next row in the same block. ``twin``: the twin's rows
        of the same range, if the caller has them."""
        n = len(rows)
        bit = np.uint8(1 << self.schema.links.index(spec))
        rows_idx = np.arange(first_row, first_row + n)  # may start below the watermark
        side = {name: self._column(self.schema.by_name[name], rows_idx, marker)
                for name in (LINK, ROBOT_ID)}
        linked = np.flatnonzero(side[LINK] & bit)
        if not linked.size:
            return
        block = self.schema.block_rows
        codes = side[ROBOT_ID]
        targets = np.empty(linked.size, np.int64)
        for i, j in enumerate(linked.tolist()):
            end = (j // block + 1) * block
            later = np.flatnonzero(codes[j + 1:end] == codes[j])
            if not later.size:
                raise StoreError(f'{self.path}: field {spec.name!r} row {first_row + j} is '
                                 'linked to no later row of its block; the store is corrupted')
            targets[i] = j + 1 + later[0]
        if twin is None:
            rows[linked] = self._column(self.schema.by_name[spec.link], first_row + targets,
                                        marker)
        else:
            rows[linked] = twin[targets]

    def _column(self, spec: FieldSpec, idx: np.ndarray, marker: CommitMarker) -> np.ndarray:
        column = np.empty((idx.size, *spec.shape), spec.dtype)
        c = spec.chunk_rows
        ks = idx // c
        complete = marker.count // c
        for k in np.unique(ks).tolist():
            mask = ks == k
            rows = idx[mask] - k * c
            if k < complete:
                chunk = self.chunk(spec.name, k)
                if spec.link:
                    chunk = chunk.copy()
                    self.resolve_links(spec, k * c, chunk, marker)
                column[mask] = chunk[rows]
            else:
                column[mask] = marker.tails[spec.name][rows]
        return column

    def _fields(self, fields: Iterable[str] | None) -> list[FieldSpec]:
        if fields is None:
            return list(self.info.schema.public)
        specs = []
        for name in fields:
            if name not in self.info.schema.by_name:
                raise KeyError(f'unknown field {name!r}; known: {sorted(self.schema.by_name)}')
            specs.append(self.info.schema.by_name[name])
        return specs
