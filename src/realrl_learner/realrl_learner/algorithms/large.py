"""What fine-tuning a large actor on one GPU needs: frozen parts, micro-batches and bf16
autocast (the imitation algorithms' ``freeze``, ``grad_accumulation_steps`` and
``precision``); no ROS imports."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from realrl_learner.adam_step import adam_step
from realrl_learner.data_parallel import average_gradients

PRECISIONS = ('float32', 'bf16')


def freeze_parameters(actor: nn.Module, prefixes: tuple[str, ...]) -> tuple[str, ...]:
    """Set requires_grad False on the actor's parameters whose name is a prefix or starts
    with prefix + '.'; returns their names. ValueError naming the parts the actor has if a
    prefix names none, or if nothing would be left to train."""
    names = [n for n, _ in actor.named_parameters()]
    parts = sorted({n.split('.')[0] for n in names})
    frozen: set[str] = set()
    for prefix in prefixes:
        hit = {n for n in names if n == prefix or n.startswith(prefix + '.')}
        if not hit:
            raise ValueError(f'freeze: {prefix!r} names no parameters of the '
                             f'{actor.cfg.type!r} actor; its parts are {parts} (a prefix '
                             f'may also go deeper, e.g. {names[0]!r})')
        frozen |= hit
    if frozen and len(frozen) == len(names):
        raise ValueError(f'freeze: {list(prefixes)} freezes every parameter of the actor; '
                         f'leave at least one of {parts} to train')
    for name, param in actor.named_parameters():
        if name in frozen:
            param.requires_grad_(False)
    return tuple(n for n in names if n in frozen)


def _rows(value, idx: np.ndarray):
    if isinstance(value, Mapping):
        return {k: _rows(v, idx) for k, v in value.items()}
    return value[torch.as_tensor(idx)] if isinstance(value, torch.Tensor) else value[idx]


def micro_batches(batch: Mapping, rows: int, steps: int) -> Iterator[tuple[np.ndarray, dict]]:
    """(row indices, the batch's rows at them) for steps near-equal consecutive parts of a
    batch of `rows` rows (fields nested in mappings, as the learner's 'obs', are cut too);
    the batch itself, uncopied, for one step."""
    if steps <= 1:
        yield np.arange(rows), dict(batch)
        return
    for idx in np.array_split(np.arange(rows), min(steps, rows)):
        yield idx, _rows(batch, idx)


def on_device(name: str) -> torch.device:
    """The torch device of a config's device name; ValueError naming the fix if it is a GPU
    that torch does not see."""
    device = torch.device(name)
    if device.type == 'cuda' and not (torch.cuda.is_available()
                                      and (device.index or 0) < torch.cuda.device_count()):
        raise ValueError(f'device {name!r}: torch sees {torch.cuda.device_count()} GPU(s) '
                         '(a CPU-only torch, or no driver); set device: cpu or install a CUDA '
                         'build of torch')
    return device


def to_device(inputs: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The actor's inputs on its device (a no-op where they already are)."""
    return {k: v.to(device) for k, v in inputs.items()}


def autocast(precision: str, device: torch.device):
    """A bfloat16 autocast context on device for 'bf16'; nothing for 'float32'."""
    if precision == 'bf16':
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor, clip=None,
                   max_norm: float | None = None) -> None:
    """One Adam step of opt on loss: its gradients cleared (set to None), ``loss`` back-
    propagated, with ``clip`` (the parameters of the network) averaged over the ranks and
    clipped to max_norm (``clip_gradients``), then applied by ``adam_step`` (opt.step(),
    less its per-call bookkeeping). Without ``clip`` (a temperature) neither happens."""
    for group in opt.param_groups:
        for p in group['params']:
            p.grad = None
    loss.backward()
    if clip is not None:
        clip_gradients(opt, clip, max_norm)
    adam_step(opt)


def clip_gradients(opt: torch.optim.Optimizer, params, max_norm: float | None) -> None:
    """Clip the gradients of params (opt's) to max_norm (None: no clipping), after averaging
    them over the ranks when the learner trains data-parallel (``data_parallel``), so the
    norm is the whole batch's."""
    average_gradients(opt)
    if max_norm is not None:
        nn.utils.clip_grad_norm_(params, max_norm)
