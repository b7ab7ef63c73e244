"""What a plain Zarr reader sees of a store (``zarr.open_group(store / 'data')``), kept true.

The commit marker is this package's source of truth, but a reader with Zarr alone never reads
it. So the writer also keeps the Zarr metadata in line with it:

- every array's ``shape[0]`` is N, a count of committed rows, the same for every array, and
  the group's attribute ``committed_rows`` is N (``first_row``: the retention watermark, rows
  below it read as zeros; ``robots``: the names of the ``robot_id`` codes);
- rows 0..N-1 of every array are readable: complete chunks as committed, and each field's
  last, incomplete chunk as a *partial version* (its rows padded with zeros to a whole chunk),
  appended to its shard like any chunk; a newer version (more rows), and finally the complete
  chunk, replace its index entry as the chunk grows. Partial versions of linked ``next_obs``
  fields hold their rows whole, and the link field has no bit set for those rows (see
  DESIGN.md);
- N follows the commit marker at open, at close, and after the first commit at least
  ``WriterConfig.plain_view_interval_s`` after the previous update. At close N is the
  committed count. While the writer runs, N stops at the last complete chunk of the linked
  next_obs image fields (``visible_rows``: those rows wait for their successor's image), so a
  live plain view lags the commits by up to that interval and one image chunk
  (ReplayReader follows every commit).

Order of an update: the partial versions are written and the shards fdatasync-ed; then each
array's zarr.json, then the group's zarr.json, are replaced (temporary file, fdatasync,
rename). A count shrinks only at open after a crash, whose recovery drops the partial versions
(they are not counted by the marker): the group first, then the arrays. So at every instant,
and after a crash at any instant, ``committed_rows`` <= every array's shape[0] <= the rows
that array can return correctly.

A superseded partial version is punched out of its shard (its disk space given back) at the
second update after it was superseded, so that a plain reader that had just read the old
index entry still finds its bytes.
"""
from __future__ import annotations

import json
import math
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import StoreError
from .layout import DATA_DIR, field_dir, fsync_dir, write_file
from .schema import LINK, Schema
from .shards import aligned, punch_hole, read_entry

ATTR_ROWS = 'committed_rows'
ATTR_FIRST = 'first_row'
ATTR_ROBOTS = 'robots'
ATTR_LINKS = 'next_obs_links'
ATTR_BLOCK = 'link_block_rows'
ATTR_NOTE = 'realrl_replay'
NOTE = (
    "rows 0..committed_rows-1 of every array are committed (each array's shape[0] is at "
    'least committed_rows). The writer updates both at open, at close (all committed rows) '
    'and periodically while it runs (then up to the last complete chunk of linked next_obs '
    'images), so a live store may have committed more: ReplayReader follows every commit '
    'through ../commit.0 and ../commit.1. Rows below first_row were evicted by retention and read '
    "as zeros. robot_id holds codes: the name of code i is robots[i]. Where a row's "
    '_next_obs_link has the bit of a field of next_obs_links set, that field holds zeros in '
    "the row: its image is the field's twin (an obs field) in the same robot's next row of "
    'the same block of link_block_rows rows (see realrl_replay/DESIGN.md). '
    'Image fields with filter realrl.pixel_delta need '
    'realrl_replay.pixel_delta.register_zarr_codec().')


def group_attributes(schema: Schema, rows: int, first: int, robots) -> dict:
    """The group attributes of a store whose plain view holds ``rows`` rows."""
    links = {spec.name: {'bit': 1 << i, 'twin': spec.link} for i, spec in enumerate(schema.links)}
    return {ATTR_ROWS: int(rows), ATTR_FIRST: int(first), ATTR_ROBOTS: list(robots),
            ATTR_LINKS: links, ATTR_BLOCK: schema.block_rows, ATTR_NOTE: NOTE}


@dataclass
class _Version:
    """A partial version of a chunk, written into a shard by an update."""

    path: Path
    chunks: int
    i: int
    offset: int
    nbytes: int


class PlainView:
    """Keeps ``data/`` true for plain Zarr readers; used by ReplayWriter on its commit thread
    (and at open and close, while no commit runs)."""

    def __init__(self, root: Path, schema: Schema, interval_s: float):
        self.root = Path(root)
        self.schema = schema
        self.interval_s = interval_s
        self._arrays = {}
        for spec in schema.fields:
            path = field_dir(self.root, spec) / 'zarr.json'
            self._arrays[spec.name] = (path, json.loads(path.read_bytes()))
        self._group_path = self.root / DATA_DIR / 'zarr.json'
        self._group = json.loads(self._group_path.read_bytes())
        self._written: dict[str, tuple[int, int]] = {}
        """Per field, (chunk, rows) of the newest partial version written."""
        self._versions: list[_Version] = []
        self._superseded: list[_Version] = []
        self._last = -math.inf

    @property
    def rows(self) -> int:
        """Rows the plain view shows (the group's committed_rows; -1 if it has none)."""
        return int(self._group.get('attributes', {}).get(ATTR_ROWS, -1))

    def due(self) -> bool:
        """Whether an update is due (plain_view_interval_s passed since the last one)."""
        return time.monotonic() - self._last >= self.interval_s

    def shrink(self, count: int, fsync: bool) -> None:
        """Before recovery at open: show no row that only a partial version holds (recovery
        drops them; ``update`` writes them again from the marker's tails)."""
        rows = min(count // spec.chunk_rows * spec.chunk_rows for spec in self.schema.fields)
        shapes = {name: meta['shape'][0] for name, (_, meta) in self._arrays.items()}
        if max(shapes.values()) <= rows and 0 <= self.rows <= rows:
            return
        attrs = self._group.setdefault('attributes', {})
        attrs.update(group_attributes(self.schema, min(rows, max(self.rows, 0)),
                                      attrs.get(ATTR_FIRST, 0), attrs.get(ATTR_ROBOTS, [])))
        write_file(self._group_path, _dump(self._group), fsync)
        for name, (path, meta) in self._arrays.items():
            if shapes[name] > rows:
                meta['shape'][0] = rows
                write_file(path, _dump(meta), fsync)

    def visible_rows(self, count: int, final: bool) -> int:
        """Rows an update for a commit of ``count`` rows shows: all of them at close
        (``final``); while the writer runs, only those in complete chunks of linked next_obs
        fields (a row stored as a link there has its twin in the same complete block, and
        its link bit is final), as the next commit may complete such a chunk, and store its
        linked images as zeros, before the next update writes the link field."""
        if final:
            return count
        return min([count] + [count // f.chunk_rows * f.chunk_rows for f in self.schema.links])

    def update(self, marker, columns: dict, pool: Executor, fsync: bool,
               final: bool = False) -> None:
        """Show the rows of ``marker`` (committed; see visible_rows): write the partial
        versions of incomplete chunks, then the arrays' shapes, then the group's
        attributes."""
        self._last = time.monotonic()
        count = marker.count
        rows = self.visible_rows(count, final)
        jobs = []
        for name, column in columns.items():
            k, n = divmod(rows, column.spec.chunk_rows)
            held = count % column.spec.chunk_rows  # the tail's rows: rows..count-1 and more
            if n and k == count // column.spec.chunk_rows and self._written.get(name) != (k, held):
                tail = marker.tails[name]
                if name == LINK:
                    tail = self._link_bits(tail, count)
                jobs.append(pool.submit(self._write_partial, column, k, tail, fsync))
                self._written[name] = (k, held)
        for job in jobs:
            self._versions.append(job.result())
        writes = []
        for path, meta in self._arrays.values():
            if meta['shape'][0] != rows:
                meta['shape'][0] = rows
                writes.append(pool.submit(write_file, path, _dump(meta), fsync))
        for job in writes:
            job.result()
        attrs = self._group.setdefault('attributes', {})
        new = group_attributes(self.schema, rows, marker.first, marker.robots)
        if any(attrs.get(key) != value for key, value in new.items()):
            attrs.update(new)
            write_file(self._group_path, _dump(self._group), fsync)
        self._reclaim()

    def _write_partial(self, column, k: int, tail: np.ndarray, fsync: bool) -> _Version:
        """Append chunk ``k`` of ``column`` as its ``tail`` rows padded with zeros."""
        spec = column.spec
        chunk = np.zeros((spec.chunk_rows, *spec.shape), spec.dtype)
        chunk[:len(tail)] = tail
        data = column.codec.encode(chunk)
        j, i = divmod(k, spec.shard_chunks)
        created = column.open_shard(j, fsync)
        offset = column.shard.end
        column.shard.append(i, data)
        column.shard.flush(fsync)
        if created and fsync:
            fsync_dir(column.folder)
        return _Version(column.shard.path, spec.shard_chunks, i, offset, len(data))

    def _link_bits(self, tail: np.ndarray, count: int) -> np.ndarray:
        """The link field's tail with the bits of each linked field cleared in the rows of
        that field's partial version (stored whole there; their twin may not be committed
        yet), kept in its complete chunks (stored as zeros there)."""
        tail = tail.copy()
        start = count - len(tail)
        for i, spec in enumerate(self.schema.links):
            whole_from = max(count // spec.chunk_rows * spec.chunk_rows - start, 0)
            tail[whole_from:] &= np.uint8(~(1 << i) & 0xFF)
        return tail

    def _reclaim(self) -> None:
        """Punch out the versions found superseded at the previous update; find the newly
        superseded ones (their index entry points elsewhere now, or the shard is gone)."""
        for v in self._superseded:
            punch_hole(v.path, v.offset, aligned(v.nbytes))
        self._superseded, kept = [], []
        for v in self._versions:
            try:
                current = read_entry(v.path, v.chunks, v.i)
            except (FileNotFoundError, StoreError):
                continue  # deleted by retention
            (self._superseded if current != (v.offset, v.nbytes) else kept).append(v)
        self._versions = kept


def _dump(doc: dict) -> bytes:
    return json.dumps(doc, indent=2).encode()
