"""One step of a fused ``torch.optim.Adam`` without its per-call bookkeeping.

``Adam.step()`` with ``fused=True`` runs one kernel over all of a group's tensors, but around
it goes through hooks, group setup and per-device grouping: at SAC's sizes on one CPU thread
that costs a few hundred microseconds per call, three calls an update (critics, actor,
temperature), several percent of the update. ``adam_step`` runs the same kernel, with the same
arguments, on the optimiser's own state tensors, so the result and the optimiser's state
(``state_dict``, checkpoints) are exactly those of ``step()`` (``test_sac.py`` checks it).
Anything it does not cover (a first step, several groups, amsgrad, missing gradients, step
hooks such as the data-parallel ranks' gradient averaging, ...) goes to ``step()``.
"""
from __future__ import annotations

import torch
from torch.optim import optimizer as optim_module

_PLAIN = {'amsgrad': False, 'maximize': False, 'capturable': False, 'differentiable': False,
          'fused': True, 'weight_decay': 0.0, 'decoupled_weight_decay': False}


def has_step_hooks(opt: torch.optim.Optimizer) -> bool:
    """Whether step() would call hooks registered on opt, or on every optimiser."""
    return bool(opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks
                or optim_module._global_optimizer_pre_hooks
                or optim_module._global_optimizer_post_hooks)


def adam_step(opt: torch.optim.Adam) -> None:
    """opt.step() for a fused single-group Adam (see the module doc)."""
    if len(opt.param_groups) != 1 or has_step_hooks(opt):
        opt.step()  # hooks (e.g. data_parallel's gradient averaging) run only in step()
        return
    group = opt.param_groups[0]
    params = group['params']
    states = [opt.state.get(p) for p in params]
    if (any(group.get(k, v) != v for k, v in _PLAIN.items())
            or any(not s or p.grad is None for p, s in zip(params, states))):
        opt.step()  # the first step creates the state; unusual settings keep their path
        return
    steps = [s['step'] for s in states]
    torch._foreach_add_(steps, 1)
    beta1, beta2 = group['betas']
    torch._fused_adam_(params, [p.grad for p in params], [s['exp_avg'] for s in states],
                       [s['exp_avg_sq'] for s in states], [], steps, amsgrad=False,
                       lr=group['lr'], beta1=beta1, beta2=beta2, weight_decay=0.0,
                       eps=group['eps'], maximize=False, grad_scale=None, found_inf=None)
