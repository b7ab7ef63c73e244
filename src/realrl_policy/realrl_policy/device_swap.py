"""New weights onto an accelerator without stalling inference: two copies of the actor.

On a GPU, ``module.load_state_dict(new)`` (or building the new actor and ``.to(device)``) puts
host-to-device copies of every tensor on the stream inference uses, so the inference steps
queued behind them wait for the whole transfer: a 100M-parameter actor in float32 is 400 MB,
tens of milliseconds over PCIe. Here the actor lives twice on the device. New weights are
copied from pinned host memory into the standby copy on a stream of their own, and an event
marks the end of the copies; between two inference steps, ``active()`` swaps the copies once
the event has completed. A step is always computed by one whole set of weights, and a step
never waits for a transfer.

On a CPU there is nothing to overlap: ``stage`` loads the weights into the standby copy at
once and the swap happens at the next step boundary, with the same guarantee.

``stage`` may run on another thread than ``active`` (the policy's weights loader stages, its
control thread steps): the standby copy is written under a lock, and ``active`` never waits
for it (while a stage runs, the current copy serves). Weights staged with ``commit=False``
wait for ``commit(version)`` (the policy's check that they fit its robots) before they may
be swapped in.
"""
from __future__ import annotations

import contextlib
import copy
import threading

import torch
from torch import nn

SLICE_ELEMENTS = 1 << 20
"""Elements per host-to-device transfer (4 MB of float32)."""


class DoubleBufferedActor:
    """The active actor and a standby copy being filled with the next weights."""

    def __init__(self, actor: nn.Module, device: str | torch.device = 'cpu'):
        self.device = torch.device(device)
        self._cuda = self.device.type == 'cuda'
        self._stream = torch.cuda.Stream(self.device) if self._cuda else None
        # A pair is built while the policy runs (its first version, or weights of another
        # architecture): on the default stream, these copies would hold up its steps.
        with torch.cuda.stream(self._stream) if self._cuda else contextlib.nullcontext():
            self._active = actor.to(self.device).eval()
            self._standby = copy.deepcopy(self._active)
        if self._cuda:
            self._stream.synchronize()   # whole before anyone steps on it (this thread waits)
            steps = torch.cuda.default_stream(self.device)
            for t in (*_tensors(self._active), *_tensors(self._standby)):
                t.record_stream(steps)   # freed: not reused before the steps queued on it
        # Page-locked staging memory for every tensor, allocated here, with the pair, not at
        # its first stage: pinning hundreds of MB takes the driver tens of milliseconds, and
        # the inference steps launched meanwhile wait for it.
        self._pinned = {k: torch.empty(v.shape, dtype=v.dtype, pin_memory=True)
                        for k, v in self._standby.state_dict().items()} if self._cuda else {}
        self._event = None
        self._released = None  # on the inference stream: the old active copy's last use
        self.version = 0
        self._staged_version: int | None = None
        self._committed: int | None = None
        self._lock = threading.Lock()   # held while the standby copy is written
        self.swaps = 0

    def stage(self, state_dict: dict[str, torch.Tensor], version: int,
              commit: bool = True) -> None:
        """Begin copying state_dict (host tensors of the same architecture) into the standby
        copy; ValueError if its keys or shapes differ (such weights need a new actor). A
        version staged before the previous one was swapped in replaces it. ``commit=False``:
        not swapped in before ``commit(version)``."""
        with self._lock:
            self._stage(state_dict, version, commit)

    def commit(self, version: int) -> None:
        """Let staged ``version`` be swapped in (once its copies have arrived)."""
        self._committed = int(version)

    def _stage(self, state_dict: dict[str, torch.Tensor], version: int, commit: bool) -> None:
        target = self._standby.state_dict()
        if set(target) != set(state_dict):
            raise ValueError(f'weights hold {sorted(set(state_dict) ^ set(target))} that the '
                             f'actor does not (or the reverse); build a new actor for them')
        for k, v in state_dict.items():
            if tuple(v.shape) != tuple(target[k].shape):
                raise ValueError(f'weights {k!r} have shape {tuple(v.shape)}, the actor '
                                 f'{tuple(target[k].shape)}')
        if self._event is not None:  # the standby copy is still being written: let it finish
            self._event.synchronize()
        self._staged_version, self._committed = None, int(version) if commit else None
        if not self._cuda:
            with torch.no_grad():
                for k, v in state_dict.items():
                    target[k].copy_(v)
            self._event, self._staged_version = None, int(version)
            return
        with torch.no_grad(), torch.cuda.stream(self._stream):
            if self._released is not None:  # steps queued on the old active copy go first
                self._stream.wait_event(self._released)
            for k, v in state_dict.items():
                host = self._pinned[k]
                # In slices: each transfer is short, so the copy engine never holds up the
                # inference stream's own small copies for long.
                flat_host, flat_dev, flat_src = host.view(-1), target[k].view(-1), v.reshape(-1)
                for i in range(0, flat_src.numel(), SLICE_ELEMENTS):
                    j = i + SLICE_ELEMENTS
                    flat_host[i:j].copy_(flat_src[i:j])
                    flat_dev[i:j].copy_(flat_host[i:j], non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record(self._stream)
        self._staged_version = int(version)

    def active(self) -> nn.Module:
        """The actor for the next step: the standby copy once its weights have fully
        arrived and are committed (then the two trade places), else the current one. Never
        waits."""
        if not self._swappable() or not self._lock.acquire(blocking=False):
            return self._active   # nothing to swap in, or a stage is writing the standby
        try:
            if self._swappable() and (self._event is None or self._event.query()):
                self._active, self._standby = self._standby, self._active
                self.version, self._staged_version, self._event = (self._staged_version, None,
                                                                   None)
                self.swaps += 1
                if self._cuda:
                    self._released = torch.cuda.Event()
                    self._released.record(torch.cuda.current_stream(self.device))
        finally:
            self._lock.release()
        return self._active

    def _swappable(self) -> bool:
        return self._staged_version is not None and self._staged_version == self._committed

    def pending(self) -> bool:
        """Whether staged weights have not been swapped in yet."""
        return self._staged_version is not None


def _tensors(module: nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()]
