"""New weights made ready off the control thread: chunks in, a prepared actor out (no rclpy).

A policy node takes observations and weight chunks on one executor thread. Reassembling a
version, checking its CRC and unpacking it into an actor takes seconds for a large actor
(a 100M-parameter blob: 400 MB to join, check and copy), and done in a callback it would
hold every observation that arrives meanwhile. ``WeightsLoader`` does it on its own thread:
the executor thread only queues each chunk, and is woken (``on_ready``) to swap a prepared
actor in between two actions, which is cheap. The thread may run at a lower CPU priority
(``nice``, Linux), but does not by default: it holds the GIL in parts (joining the blob,
copies), and a low-priority holder that the scheduler leaves waiting on a loaded machine
would keep the control thread waiting for the GIL too.
Latest wins: a version prepared while an older one waits replaces it, and chunks of a
version older than the newest one whole are dropped by the assembler. A partial version
(only the trained tensors) goes onto the newest prepared actor, swapped in or not.
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Callable

from realrl_common.weights import BlobAssembler, Chunk
from realrl_policy.inference import Prepared

Prepare = Callable[..., 'Prepared | str']
"""(version, blob, base actor or None for the current one) -> a prepared version or why not."""


class WeightsLoader:
    """Assembles and prepares versions on a worker thread; ``take`` hands out the newest."""

    def __init__(self, prepare: Prepare, on_ready: Callable[[], None], nice: int = 0):
        self._prepare = prepare
        self._on_ready = on_ready
        self._nice = nice
        self.assembler = BlobAssembler()
        self._chunks: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._ready: Prepared | None = None
        self._newest = None   # the newest actor prepared: the base of a partial version
        self._errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name='weights-loader', daemon=True)
        self._thread.start()

    def put(self, chunk: Chunk) -> None:
        """Queue one chunk (any thread; returns at once)."""
        self._chunks.put(chunk)

    def take(self) -> tuple[Prepared | None, list[str]]:
        """The newest prepared version not yet taken (or None), and the refusals since."""
        with self._lock:
            ready, self._ready = self._ready, None
            errors, self._errors = self._errors, []
        return ready, errors

    def _run(self) -> None:
        if self._nice:
            try:   # this thread only: Linux gives each thread its own nice value
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
            except (OSError, AttributeError):
                pass  # not permitted or not Linux: it runs at the node's priority
        while True:
            chunk = self._chunks.get()
            if chunk is None:
                return
            whole = self.assembler.add(chunk)
            if whole is None:
                continue
            prepared = self._prepare(*whole, self._newest, checked=True)   # CRC-32 checked
            with self._lock:
                if isinstance(prepared, str):
                    self._errors.append(prepared)
                else:
                    self._newest = prepared.actor
                    if self._ready is None or prepared.version > self._ready.version:
                        self._ready = prepared
            self._on_ready()

    def close(self) -> None:
        """Stop the worker (after the version it is preparing, if any)."""
        self._chunks.put(None)
        self._thread.join(timeout=30)
