"""Behaviour cloning ('bc'): the actor regresses the demonstrated actions; no ROS imports.

A single-action actor ('mlp') regresses its deterministic action onto the demonstrated one
(mean squared error); a chunk actor ('flow', 'vla_tiny') minimises its own imitation loss
(flow matching, or the chunk's squared error) on the demonstrated chunk. Rows may be
weighted: ``HGDAgger`` gives the robot's own actions weight 0.

For large actors (a VLA on one GPU): ``grad_accumulation_steps`` splits each batch into
micro-batches whose gradients add up to the whole batch's, ``precision: bf16`` runs the
forward pass and loss under bfloat16 autocast (weights and Adam stay float32), and
``freeze`` leaves parts of the actor (its vision encoder, say) untrained and out of the
optimiser (``large.freeze_parameters``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch

from realrl_learner.algorithms.common import (
    ObservationSpec,
    actor_fields,
    actor_inputs,
    as_spec,
    check_batch,
    imitation_target,
)
from realrl_learner.algorithms.large import (
    PRECISIONS,
    autocast,
    clip_gradients,
    freeze_parameters,
    micro_batches,
    on_device,
    to_device,
)
from realrl_policy.models import ActorConfig, build_actor, module_device


@dataclass(frozen=True)
class BCConfig:
    """Behaviour-cloning hyperparameters."""

    type: str = 'bc'
    """Registered algorithm name ('realrl.algorithms')."""
    actor: ActorConfig = field(default_factory=ActorConfig)
    """The actor to train (any registered type, with its config class: FlowActorConfig for
    'flow', VLATinyConfig for 'vla_tiny'; ``models.actor_config_from_json`` builds the right
    one from a mapping with a type)."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    batch_size: int = 128
    """Rows per gradient step."""
    max_grad_norm: float | None = 1.0
    """Clip the actor's gradient to this norm; None disables clipping."""
    learning_starts: int = 0
    """Stored transitions before the first update (demonstrations are there from the start)."""
    updates_per_step: float = 1.0
    """Updates per stored transition the learner paces itself to."""
    grad_accumulation_steps: int = 1
    """Micro-batches of batch_size rows per optimiser step (the learner samples
    grad_accumulation_steps x batch_size rows); their gradients are weighted so the step
    equals one on the whole batch, with the memory of one micro-batch."""
    precision: str = 'float32'
    """'float32', or 'bf16': forward pass and loss under bfloat16 autocast on the actor's
    device; weights, gradients and Adam stay float32."""
    device: str = 'cpu'
    """Where the actor trains: 'cpu', 'cuda' or 'cuda:<index>' (batches are cut into
    micro-batches on the CPU and moved one at a time; published weights are on the CPU)."""
    freeze: tuple[str, ...] = ()
    """Parameter-name prefixes of the actor left untrained (e.g. [vision] for vla_tiny's
    image encoder): out of the optimiser, and left out of the weights the learner publishes
    after its first version (the policy keeps its own copy)."""

    def __post_init__(self):
        if not isinstance(self.actor, ActorConfig):
            raise ValueError(f'actor must be an ActorConfig, got {type(self.actor).__name__}')
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f'lr must be a positive number, got {self.lr}')
        if not self.weight_decay >= 0:
            raise ValueError(f'weight_decay must be >= 0, got {self.weight_decay}')
        if self.batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {self.batch_size}')
        if self.learning_starts < 0:
            raise ValueError(f'learning_starts must be >= 0, got {self.learning_starts}')
        if not (math.isfinite(self.updates_per_step) and self.updates_per_step > 0):
            raise ValueError(f'updates_per_step must be > 0, got {self.updates_per_step}')
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f'max_grad_norm must be > 0 or None, got {self.max_grad_norm}')
        if not (isinstance(self.grad_accumulation_steps, int)
                and self.grad_accumulation_steps >= 1):
            raise ValueError(f'grad_accumulation_steps must be an integer >= 1 (1: no '
                             f'accumulation), got {self.grad_accumulation_steps!r}')
        if self.precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {list(PRECISIONS)}, got '
                             f'{self.precision!r}')
        if not (self.device == 'cpu' or re.fullmatch(r'cuda(:\d+)?', str(self.device))):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got "
                             f'{self.device!r}')
        if isinstance(self.freeze, str) or not all(
                isinstance(p, str) and p for p in self.freeze):
            raise ValueError(f'freeze must be a list of parameter-name prefixes, e.g. '
                             f'[vision], got {self.freeze!r}')


class BC:
    """The actor, its optimiser and the behaviour-cloning step."""

    config_class = BCConfig

    def __init__(self, obs_spec: ObservationSpec | int, act_dim: int,
                 cfg: BCConfig = BCConfig(), seed: int = 0):
        self.cfg = cfg
        self.spec = as_spec(obs_spec)
        self.act_dim = act_dim
        torch.manual_seed(seed)
        self.actor = build_actor(cfg.actor, self.spec.state_dim, act_dim).to(on_device(cfg.device))
        wants = tuple(getattr(cfg.actor, 'image_shape', ()))
        if wants and self.spec.image_shape and tuple(self.spec.image_shape) != wants:
            raise ValueError(f'the actor reads images of {wants}, the robots give '
                             f'{self.spec.image_shape}: set actor.image_shape to match')
        self.frozen = freeze_parameters(self.actor, cfg.freeze)
        self.trainable = [p for p in self.actor.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.updates = 0

    @property
    def batch_keys(self) -> tuple[str, ...]:
        """Batch keys update reads (common.BATCH_FIELDS)."""
        return actor_fields(self.actor)

    def loss(self, batch: dict[str, torch.Tensor], weight: torch.Tensor | None = None
             ) -> torch.Tensor:
        """The imitation loss of batch, rows weighted by weight [B] (None: all 1)."""
        device = module_device(self.actor)
        target = imitation_target(self.actor, batch).to(device)
        inputs = to_device(actor_inputs(self.actor, batch), device)
        weight = None if weight is None else weight.to(device)
        if hasattr(self.actor, 'imitation_loss'):
            return self.actor.imitation_loss(inputs, target, weight)
        _, _, predicted = self.actor(inputs['obs'])
        per_row = ((predicted - target) ** 2).mean(dim=-1)
        if weight is None:
            return per_row.mean()
        return (per_row * weight).sum() / weight.sum().clamp_min(1.0)

    def learn(self, batch: dict, weight: torch.Tensor | None = None) -> torch.Tensor:
        """One optimiser step on every row of batch (rows weighted by weight), gradients
        accumulated over grad_accumulation_steps micro-batches; returns the batch's loss.

        Each micro-batch's loss is scaled by its share of the batch (of its rows, or of its
        weight when rows are weighted), so the summed gradient is the whole batch's."""
        n = check_batch(batch, self.batch_keys)
        weight = None if weight is None else torch.as_tensor(weight).reshape(n).float()
        total_w = None if weight is None else float(weight.sum())
        self.opt.zero_grad(set_to_none=True)
        total = torch.zeros(())
        device = module_device(self.actor)
        for rows, micro in micro_batches(batch, n, self.cfg.grad_accumulation_steps):
            w = None if weight is None else weight[rows]
            if w is None:
                share = len(rows) / n
            elif float(w.sum()) == 0.0:
                continue  # rows that weigh nothing add no gradient
            else:  # weighted means divide by max(sum of weights, 1): undo it, redo it whole
                share = max(float(w.sum()), 1.0) / max(total_w, 1.0)
            with autocast(self.cfg.precision, device):
                loss = self.loss(micro, w).float() * share
            loss.backward()
            total += loss.detach().cpu()
        clip_gradients(self.opt, self.trainable, self.cfg.max_grad_norm)
        self.opt.step()
        self.updates += 1
        return total

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimiser step on every row of batch."""
        loss = self.learn(batch)
        return {'train/bc_loss': float(loss.detach()), 'train/updates': float(self.updates)}

    def state_dict(self) -> dict:
        """Actor, optimiser and update count."""
        return {'state_dim': self.spec.state_dim, 'act_dim': self.act_dim,
                'updates': self.updates, 'actor': self.actor.state_dict(),
                'opt': self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore state_dict output."""
        if (state.get('state_dim'), state.get('act_dim')) != (self.spec.state_dim, self.act_dim):
            raise ValueError(f'checkpoint is for state_dim {state.get("state_dim")}, act_dim '
                             f'{state.get("act_dim")}; this learner has {self.spec.state_dim}, '
                             f'{self.act_dim}: resume with the same robots')
        self.actor.load_state_dict(state['actor'])
        try:
            self.opt.load_state_dict(state['opt'])
        except ValueError as e:  # the optimiser holds the trainable parameters only
            raise ValueError(f"checkpoint's optimiser does not fit this learner ({e}): "
                             f'resume with the freeze the run had (now '
                             f'{list(self.cfg.freeze)})') from None
        self.updates = int(state['updates'])
