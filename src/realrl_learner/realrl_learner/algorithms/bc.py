"""Behaviour cloning ('bc'): the actor regresses the demonstrated actions; no ROS imports.

A single-action actor ('mlp') regresses its deterministic action onto the demonstrated one
(mean squared error); a chunk actor ('flow', 'vla_tiny') minimises its own imitation loss
(flow matching, or the chunk's squared error) on the demonstrated chunk. Rows may be
weighted: ``HGDAgger`` gives the robot's own actions weight 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from realrl_learner.algorithms.common import (
    ObservationSpec,
    actor_fields,
    actor_inputs,
    as_spec,
    check_batch,
    imitation_target,
)
from realrl_policy.models import ActorConfig, build_actor


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


class BC:
    """The actor, its optimiser and the behaviour-cloning step."""

    config_class = BCConfig

    def __init__(self, obs_spec: ObservationSpec | int, act_dim: int,
                 cfg: BCConfig = BCConfig(), seed: int = 0):
        self.cfg = cfg
        self.spec = as_spec(obs_spec)
        self.act_dim = act_dim
        torch.manual_seed(seed)
        self.actor = build_actor(cfg.actor, self.spec.state_dim, act_dim)
        wants = tuple(getattr(cfg.actor, 'image_shape', ()))
        if wants and self.spec.image_shape and tuple(self.spec.image_shape) != wants:
            raise ValueError(f'the actor reads images of {wants}, the robots give '
                             f'{self.spec.image_shape}: set actor.image_shape to match')
        self.opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr,
                                    weight_decay=cfg.weight_decay)
        self.updates = 0

    @property
    def batch_keys(self) -> tuple[str, ...]:
        """Batch keys update reads (common.BATCH_FIELDS)."""
        return actor_fields(self.actor)

    def loss(self, batch: dict[str, torch.Tensor], weight: torch.Tensor | None = None
             ) -> torch.Tensor:
        """The imitation loss of batch, rows weighted by weight [B] (None: all 1)."""
        target = imitation_target(self.actor, batch)
        inputs = actor_inputs(self.actor, batch)
        if hasattr(self.actor, 'imitation_loss'):
            return self.actor.imitation_loss(inputs, target, weight)
        _, _, predicted = self.actor(inputs['obs'])
        per_row = ((predicted - target) ** 2).mean(dim=-1)
        if weight is None:
            return per_row.mean()
        return (per_row * weight).sum() / weight.sum().clamp_min(1.0)

    def step(self, loss: torch.Tensor) -> None:
        """One optimiser step on loss."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.actor.parameters(), self.cfg.max_grad_norm)
        self.opt.step()
        self.updates += 1

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One gradient step on every row of batch."""
        check_batch(batch, self.batch_keys)
        loss = self.loss(batch)
        self.step(loss)
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
        self.opt.load_state_dict(state['opt'])
        self.updates = int(state['updates'])
