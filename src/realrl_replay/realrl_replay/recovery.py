"""Bringing a store's shard files back in line with its commit marker.

After a writer dies at any instant the folder holds the last commit marker (in one of the two
slots, whole), every complete chunk it counts (written before it, never changed since, in
shard files), and possibly: shard files wholly beyond the committed chunks (from a commit that
never wrote its marker), shard files wholly below the retention watermark (a deletion cut
short), chunks and index entries beyond the committed ones in the last shard, and
'.partial' files (format 1). ``repair`` deletes the stray files; the writer's ShardWriter
drops the stray chunks of the last shard when it opens it. The tail rows the writer continues
from are inside the marker.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import StoreError
from .layout import COMMIT_FILE, PARTIAL_SUFFIX, chunk_index, chunk_name, field_dir
from .schema import FieldSpec
from .shards import check_entries
from .store import StoreInfo


@dataclass
class FieldScan:
    """Shard files found in one field's folder."""

    spec: FieldSpec
    shards: set[int]
    partials: list[str]


def _bounds(spec: FieldSpec, count: int, first: int) -> tuple[int, int]:
    """(first kept chunk, committed complete chunks) of ``spec``."""
    return first // spec.chunk_rows, count // spec.chunk_rows


def scan(info: StoreInfo, count: int, first: int = 0) -> list[FieldScan]:
    """List every field's shard files (read-only); StoreError if a shard of committed chunks
    is missing."""
    scans = []
    for spec in info.schema.fields:
        folder = field_dir(info.root, spec)
        shards, partials = set(), []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(PARTIAL_SUFFIX):
                    partials.append(entry.name)
                else:
                    j = chunk_index(entry.name)
                    if j is not None:
                        shards.add(j)
        lo, complete = _bounds(spec, count, first)
        size = spec.shard_chunks
        needed = set(range(lo // size, -(-complete // size))) if complete > lo else set()
        if not needed <= shards:
            missing = sorted(needed - shards)[:5]
            raise StoreError(
                f'{folder}: shard files {missing} of field {spec.name!r} are missing (commit '
                f'marker counts rows {first}..{count - 1}); the store is corrupted')
        if complete > lo:  # the last shard's committed entries (the writer appends after them)
            j = (complete - 1) // size
            check_entries(folder / chunk_name(spec, j), size, max(lo, j * size) - j * size,
                          complete - j * size)
        scans.append(FieldScan(spec, shards, partials))
    return scans


def repair(info: StoreInfo, count: int, scans: list[FieldScan], first: int = 0) -> int:
    """Delete what the commit marker does not count; return the number of files deleted."""
    deleted = 0
    stray_marker = info.root / (COMMIT_FILE + PARTIAL_SUFFIX)
    if stray_marker.exists():
        stray_marker.unlink()
        deleted += 1
    for fs in scans:
        folder = field_dir(info.root, fs.spec)
        for name in fs.partials:
            (folder / name).unlink(missing_ok=True)
            deleted += 1
        lo, complete = _bounds(fs.spec, count, first)
        size = fs.spec.shard_chunks
        for j in fs.shards:
            if (j + 1) * size <= lo or j * size >= complete:
                (folder / chunk_name(fs.spec, j)).unlink(missing_ok=True)
                deleted += 1
    return deleted
