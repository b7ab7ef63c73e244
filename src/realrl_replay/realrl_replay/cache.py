"""A fixed arena of decoded blocks, filled by a background thread.

A block is ``block_rows`` consecutive rows of every selected field (block_rows is the smallest
chunk of those fields, so a block lies inside one chunk of each). The arena holds, per field,
an array ``(slots, block_rows, *shape)``: gathering a batch is one fancy index per field, as in
an in-memory buffer. Only the sampler's thread decides which slot holds what; the loader thread
writes only into slots handed to it and not yet given back.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import numpy as np

from .layout import CommitMarker
from .reader import ReplayReader
from .schema import FieldSpec


@dataclass(frozen=True)
class Loaded:
    """A finished load: ``valid`` rows of ``block`` are in ``slot`` (or ``error``)."""

    slot: int
    block: int
    valid: int
    error: BaseException | None = None


class BlockCache:
    """The arena and its loader thread."""

    def __init__(self, reader: ReplayReader, specs: list[FieldSpec], block_rows: int,
                 slots: int):
        self.reader = reader
        self.specs = specs
        self.block_rows = block_rows
        self.slots = slots
        self.arena = {s.name: np.zeros((slots, block_rows, *s.shape), s.dtype) for s in specs}
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='replay-prefetch', daemon=True)
        self._thread.start()

    def request(self, slot: int, block: int, valid: int, marker: CommitMarker) -> None:
        """Load ``valid`` rows of ``block`` (as of ``marker``) into ``slot``."""
        self._requests.put((slot, block, valid, marker))

    def finished(self, wait_s: float = 0.0) -> list[Loaded]:
        """Loads finished so far; waits up to ``wait_s`` for the first one if there is none."""
        out = []
        try:
            out.append(self._results.get(timeout=wait_s) if wait_s > 0
                       else self._results.get_nowait())
            while True:
                out.append(self._results.get_nowait())
        except queue.Empty:
            pass
        return out

    def close(self) -> None:
        self._stop.set()
        self._requests.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            job = self._requests.get()
            if job is None:
                return
            slot, block, valid, marker = job
            try:
                self._load(slot, block, valid, marker)
                self._results.put(Loaded(slot, block, valid))
            except BaseException as e:  # noqa: BLE001 - handed to the sampler's thread, raised there
                self._results.put(Loaded(slot, block, valid, e))

    def _load(self, slot: int, block: int, valid: int, marker: CommitMarker) -> None:
        first = block * self.block_rows
        for spec in self.specs:  # twins of linked fields come before them
            dest = self.arena[spec.name][slot]
            k = first // spec.chunk_rows
            offset = first - k * spec.chunk_rows
            if k < marker.count // spec.chunk_rows:
                if spec.chunk_rows == self.block_rows:
                    self.reader.decode_chunk(spec, k, out=dest)
                else:
                    dest[:] = self.reader.chunk(spec.name, k)[offset:offset + self.block_rows]
                if spec.link:
                    twin = self.arena[spec.link][slot] if spec.link in self.arena else None
                    self.reader.resolve_links(spec, first, dest, marker, twin)
            else:
                dest[:valid] = marker.tails[spec.name][offset:offset + valid]
                dest[valid:] = 0
