"""Weights publication beside training: the training thread hands over a CPU copy of the
actor (``Trainer.snapshot_weights``, copied between two steps) and this thread packs it and
sends it, so the ranks of a data-parallel learner do not wait for the blob to be built and
sent; or it hands over a packed blob (``submit_blob``), and this thread sends it, paced to
the weights' budget, while one learner trains on; no ROS imports."""
from __future__ import annotations

import copy
import threading
import time
from typing import Callable

import torch
from torch import nn

from realrl_policy.weights_blob import pack_actor


def cpu_shadow(actor: nn.Module) -> nn.Module:
    """A copy of actor on the CPU (pinned memory where a GPU is there, so that the copies
    into it are fast) for copy_weights to fill."""
    shadow = copy.deepcopy(actor).to('cpu')
    if torch.cuda.is_available():
        for t in list(shadow.parameters()) + list(shadow.buffers()):
            t.data = t.data.pin_memory()
    return shadow


def copy_weights(shadow: nn.Module, actor: nn.Module, trained_only: bool = False) -> None:
    """Copy the actor's weights into its shadow (cpu_shadow), all or those that train;
    returns when they are there."""
    with torch.no_grad():
        for mine, theirs in zip(shadow.parameters(), actor.parameters()):
            if theirs.requires_grad or not trained_only:
                mine.copy_(theirs, non_blocking=True)
        for mine, theirs in zip(shadow.buffers(), actor.buffers()):
            mine.copy_(theirs, non_blocking=True)
    if any(p.is_cuda for p in actor.parameters()):
        torch.cuda.synchronize()


class PublishThread:
    """Packs (if given an actor) and sends one weights version at a time in a thread of its
    own."""

    def __init__(self, send: Callable[[int, bytes], None], space: dict | None):
        self._send = send
        self.space = space
        """The robots' space that ``submit`` packs into each blob (set once the trainer has
        read it from the store; ``submit_blob`` needs none)."""
        self._job = None
        self._ready = threading.Condition()
        self._stopping = False
        self.last_s = 0.0
        """Seconds the last version took to pack and send."""
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name='weights-publisher',
                                        daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        """Whether the last version is out (a new one may be handed over)."""
        with self._ready:
            return self._job is None

    def submit(self, version: int, actor, partial: bool) -> None:
        """Hand over a version (the actor copy is not touched by training until the thread is
        idle again); RuntimeError if the last one is not out yet, or sending failed."""
        self._hand_over(version, lambda: pack_actor(actor, self.space, partial))

    def submit_blob(self, version: int, blob: bytes) -> None:
        """Hand over a packed version to send; RuntimeError as ``submit``."""
        self._hand_over(version, lambda: blob)

    def _hand_over(self, version: int, pack: Callable[[], bytes]) -> None:
        if self.error is not None:
            raise RuntimeError(f'publishing weights failed: {self.error}') from self.error
        with self._ready:
            if self._job is not None:
                raise RuntimeError('a weights version is still being published; check idle')
            self._job = (version, pack)
            self._ready.notify()

    def _run(self):
        while True:
            with self._ready:
                while self._job is None and not self._stopping:
                    self._ready.wait()
                if self._job is None:
                    return
                version, pack = self._job
            begun = time.monotonic()
            try:
                self._send(version, pack())
            except Exception as e:  # noqa: BLE001 - handed to the training thread
                self.error = e
            self.last_s = time.monotonic() - begun
            with self._ready:
                self._job = None

    def close(self, timeout_s: float = 30.0) -> None:
        """Send what was handed over, then stop the thread."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join(timeout_s)
