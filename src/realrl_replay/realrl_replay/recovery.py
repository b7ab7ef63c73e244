"""Bringing a store's chunk files back in line with its commit marker.

After a writer dies at any instant the folder holds the last commit marker (in one of the two
slots, whole), every complete chunk it counts (written before it, never changed since), and
possibly: chunk files of rows the marker does not count (empty pre-created ones, kept, or
complete or cut short, from a commit that never wrote its marker), chunk files wholly below
the retention watermark (a deletion cut short), and '.partial' files (format 1). Recovery
deletes all but the empty ones; the tail rows the writer continues from are inside the marker.
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
    empty: set[int]
    """Chunk files beyond the committed ones that are empty (pre-created)."""

    def created(self, count: int) -> int:
        """Index below which every chunk file exists (committed, then pre-created)."""
        k = count // self.spec.chunk_rows
        while k in self.empty:
            k += 1
        return k


def scan(info: StoreInfo, count: int, first: int = 0) -> list[FieldScan]:
    """List every field's chunk files (read-only); StoreError if a committed chunk is missing."""
    scans = []
    for spec in info.schema.fields:
        folder = field_dir(info.root, spec)
        chunks, partials, empty = set(), [], set()
        lo, complete = first // spec.chunk_rows, count // spec.chunk_rows
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(PARTIAL_SUFFIX):
                    partials.append(entry.name)
                else:
                    k = chunk_index(entry.name)
                    if k is not None:
                        chunks.add(k)
                        if k >= complete and entry.stat().st_size == 0:
                            empty.add(k)
        if sum(1 for k in chunks if lo <= k < complete) != complete - lo:
            missing = sorted(set(range(lo, complete)) - chunks)[:5]
            raise StoreError(
                f'{folder}: committed chunks {missing} of field {spec.name!r} are missing '
                f'(commit marker counts rows {first}..{count - 1}); the store is corrupted')
        scans.append(FieldScan(spec, chunks, partials, empty))
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
        lo, complete = first // fs.spec.chunk_rows, count // fs.spec.chunk_rows
        for k in fs.chunks:
            if (k >= complete and k not in fs.empty) or k < lo:
                (folder / chunk_name(fs.spec, k)).unlink(missing_ok=True)
                deleted += 1
    return deleted
