"""Data-parallel training over the processes (ranks) of one host: one per GPU, or several
on the CPU with the gloo backend; no ROS imports.

``torchrun`` (torch.distributed.run) starts the ranks and puts RANK, WORLD_SIZE, LOCAL_RANK
and the rendezvous address in their environment (``ranks_from_env``). Every rank builds the
same algorithm from the same seed; ``DataParallel`` then makes the ranks one learner,
whatever the algorithm (it knows only torch's optimisers and modules):

- ``broadcast_from_leader``: rank 0's networks and tensors overwrite the others' once, so
  every rank starts from the same weights (also after a resume onto another rank count);
- a step pre-hook on each of the algorithm's optimisers averages its parameters' gradients
  over the ranks in flattened buckets (one all-reduce per bucket) before the optimiser
  steps, so the ranks' weights stay equal. Gradient clipping must see the averaged
  gradient: an algorithm that clips calls ``average_gradients(opt)`` (a no-op without
  ranks) before it, as ``large.clip_gradients`` does; the hook then does not average again;
- ``agree``: the per-round decisions (train, publish, checkpoint, stop) are rank 0's,
  broadcast, so every rank issues the same collectives in the same order.

Each rank samples its own share of the global batch (``algorithm.batch_size / ranks``
rows) with its own random streams (``rank_seed``); the gradient averaged over the ranks is
the gradient of the global batch's mean loss, as one process computes it on all the rows.
"""
from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

RANK_SEED_STRIDE = 100_003
"""Rank r's random streams (sampler, torch) are seeded with seed + r x this; rank 0 keeps
the learner's seed, so one rank draws what a learner without ranks draws."""
BUCKET_ELEMENTS = 1 << 25
"""Gradient values per all-reduce (128 MiB of float32): large models are averaged in
buckets of this size, not in one copy of every gradient."""


_AVERAGERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Optimiser -> the DataParallel averaging its gradients."""


def average_gradients(opt: torch.optim.Optimizer) -> None:
    """Average opt's gradients over the ranks now, if it trains data-parallel (before
    clipping them); nothing otherwise."""
    averager = _AVERAGERS.get(opt)
    if averager is not None:
        averager.average_gradients(opt)


@dataclass(frozen=True)
class Ranks:
    """This process's place in the group torchrun started."""

    rank: int
    world: int
    local_rank: int

    @property
    def leader(self) -> bool:
        """Rank 0: the one that publishes weights and writes checkpoints."""
        return self.rank == 0


def ranks_from_env(env=None) -> Ranks | None:
    """The Ranks torchrun's environment describes; None for a single process."""
    env = os.environ if env is None else env
    world = int(env.get('WORLD_SIZE', '1'))
    if world <= 1:
        return None
    rank = int(env['RANK'])
    return Ranks(rank, world, int(env.get('LOCAL_RANK', rank)))


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank's own random streams."""
    return seed + RANK_SEED_STRIDE * rank


def rank_device(name: str, ranks: Ranks | None) -> str:
    """A config's device for this rank: a GPU ('cuda', 'cuda:<i>') becomes the rank's own
    (its LOCAL_RANK: one GPU per rank)."""
    if ranks is None or not name.startswith('cuda'):
        return name
    return f'cuda:{ranks.local_rank}'


def join(ranks: Ranks, cuda: bool, timeout_s: float = 600.0) -> None:
    """Join the process group: NCCL between GPUs, gloo on the CPU."""
    if dist.is_initialized():
        return
    if cuda:
        torch.cuda.set_device(ranks.local_rank)
    timeout = timedelta(seconds=timeout_s)
    dist.init_process_group('nccl' if cuda else 'gloo', rank=ranks.rank,
                            world_size=ranks.world, timeout=timeout,
                            store=attempt_store(ranks, timeout))


def attempt_store(ranks: Ranks, timeout: timedelta, env=None):
    """The rendezvous store of this start of the group, under a prefix of torchrun's restart
    count, so that a restarted group never reads an earlier start's keys (seen: after a
    rank was killed, the new rank 1 read the dead rank 0's address from torchrun's store
    and failed to connect, again at every restart); None outside torchrun."""
    env = os.environ if env is None else env
    if 'TORCHELASTIC_RESTART_COUNT' not in env or 'MASTER_ADDR' not in env:
        return None
    agent = env.get('TORCHELASTIC_USE_AGENT_STORE') == str(True)  # the agent hosts it
    tcp = dist.TCPStore(env['MASTER_ADDR'], int(env['MASTER_PORT']), ranks.world,
                        is_master=not agent and ranks.rank == 0, timeout=timeout)
    return dist.PrefixStore(f'realrl/start_{env["TORCHELASTIC_RESTART_COUNT"]}', tcp)


def leave() -> None:
    """Leave the process group (if joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def optimizers(algorithm) -> list[torch.optim.Optimizer]:
    """The algorithm's optimisers (its attributes that are one), in attribute-name order."""
    return [v for _, v in sorted(vars(algorithm).items())
            if isinstance(v, torch.optim.Optimizer)]


def _tensors(algorithm) -> list[torch.Tensor]:
    """Every parameter and buffer of the algorithm's modules and its own tensors
    (a temperature), in a fixed order."""
    out = []
    for _, value in sorted(vars(algorithm).items()):
        if isinstance(value, nn.Module):
            out += [t for _, t in sorted(value.state_dict(keep_vars=True).items())]
        elif isinstance(value, torch.Tensor):
            out.append(value)
    return out


class DataParallel:
    """Makes the ranks' copies of one algorithm train as one (see the module's doc)."""

    def __init__(self, algorithm, ranks: Ranks, device: torch.device | str = 'cpu'):
        self.algorithm = algorithm
        self.ranks = ranks
        self.device = torch.device(device)
        self._averaged: set[int] = set()
        self._hooks = []
        for opt in optimizers(algorithm):
            self._hooks.append(opt.register_step_pre_hook(self._before_step))
            self._hooks.append(opt.register_step_post_hook(self._after_step))
            _AVERAGERS[opt] = self
        if not self._hooks:
            raise ValueError(f'{type(algorithm).__name__} has no torch optimiser among its '
                             'attributes: data-parallel training cannot average its gradients')

    def broadcast_from_leader(self) -> None:
        """Rank 0's weights, buffers and tensors into every rank's (in place)."""
        with torch.no_grad():
            for t in _tensors(self.algorithm):
                data = t.data if isinstance(t, nn.Parameter) else t
                dist.broadcast(data, src=0)

    def average_gradients(self, opt: torch.optim.Optimizer) -> None:
        """Average the gradients of opt's parameters over the ranks (once per step). A
        parameter without a gradient counts as zero; it keeps None where no rank has one."""
        if id(opt) in self._averaged:
            return
        self._averaged.add(id(opt))
        params = [p for group in opt.param_groups for p in group['params']]
        for bucket in _buckets(params):
            self._average(bucket)

    def _average(self, params: list[nn.Parameter]) -> None:
        device = params[0].device
        has = torch.tensor([float(p.grad is not None) for p in params], device=device)
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p))
                          .reshape(-1).float() for p in params] + [has])
        dist.all_reduce(flat)
        flat /= self.ranks.world
        counts = flat[-len(params):]
        offset = 0
        for i, p in enumerate(params):
            n = p.numel()
            if float(counts[i]) > 0:
                grad = flat[offset:offset + n].view_as(p).to(p.dtype)
                if p.grad is None:
                    p.grad = grad.clone()
                else:
                    p.grad.copy_(grad)
            offset += n

    def _before_step(self, opt, args, kwargs):
        self.average_gradients(opt)

    def _after_step(self, opt, args, kwargs):
        self._averaged.discard(id(opt))

    def agree(self, values: list[int]) -> list[int]:
        """Rank 0's values, on every rank (the round's decisions)."""
        t = torch.tensor(values, dtype=torch.int64, device=self.device)
        dist.broadcast(t, src=0)
        return [int(v) for v in t.tolist()]

    def gather(self, obj) -> list | None:
        """Every rank's obj, in rank order, on rank 0 (None elsewhere)."""
        out = [None] * self.ranks.world if self.ranks.leader else None
        dist.gather_object(obj, out, dst=0)
        return out

    def close(self) -> None:
        """Remove the optimiser hooks."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        for opt in optimizers(self.algorithm):
            _AVERAGERS.pop(opt, None)


def _buckets(params: list[nn.Parameter]) -> list[list[nn.Parameter]]:
    """The params cut into consecutive runs of at most BUCKET_ELEMENTS values (a larger
    parameter is a bucket of its own), each on one device."""
    out, size = [], 0
    for p in params:
        if out and (size + p.numel() <= BUCKET_ELEMENTS and out[-1][0].device == p.device):
            out[-1].append(p)
            size += p.numel()
        else:
            out.append([p])
            size = p.numel()
    return out
