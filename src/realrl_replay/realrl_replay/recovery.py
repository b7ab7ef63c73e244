"""Bringing a store's chunk files back in line with its commit marker.

After a writer dies at any instant the folder holds the last commit marker (replaced
atomically, so whole), every complete chunk it counts (written before it, never changed since),
and possibly: a '.partial' marker, and chunk files of rows the marker does not count (complete
or cut short, from a commit that never wrote its marker). Recovery deletes the latter two; the
tail rows the writer continues from are inside the marker.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import StoreError
from .layout import COMMIT_FILE, PARTIAL_SUFFIX, chunk_index, chunk_name, field_dir
from .schema import FieldSpec
from .store import StoreInfo


@dataclass
class FieldScan:
    """Chunk files found in one field's folder."""

    spec: FieldSpec
    chunks: set[int]
    partials: list[str]


def scan(info: StoreInfo, count: int) -> list[FieldScan]:
    """List every field's chunk files (read-only); StoreError if a committed chunk is missing."""
    scans = []
    for spec in info.schema.fields:
        folder = field_dir(info.root, spec)
        chunks, partials = set(), []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(PARTIAL_SUFFIX):
                    partials.append(entry.name)
                else:
                    k = chunk_index(entry.name)
                    if k is not None:
                        chunks.add(k)
        complete = count // spec.chunk_rows
        if sum(1 for k in chunks if k < complete) != complete:
            missing = sorted(set(range(complete)) - chunks)[:5]
            raise StoreError(
                f'{folder}: committed chunks {missing} of field {spec.name!r} are missing '
                f'(commit marker counts {count} rows); the store is corrupted')
        scans.append(FieldScan(spec, chunks, partials))
    return scans


def repair(info: StoreInfo, count: int, scans: list[FieldScan]) -> int:
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
        complete = count // fs.spec.chunk_rows
        for k in fs.chunks:
            if k >= complete:
                (folder / chunk_name(fs.spec, k)).unlink(missing_ok=True)
                deleted += 1
    return deleted
