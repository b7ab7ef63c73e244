"""A flow-matching action head: action chunks drawn by a few Euler steps of a learned
velocity field (conditional flow matching, rectified-flow paths); no ROS imports.

Actions live in (-1, 1): the flow works in pre-tanh space and the chunk is ``tanh`` of the
flow's end point. Training by imitation regresses the velocity along straight paths from
noise ``x0 ~ N(0, I)`` to the (pre-tanh) demonstrated chunk ``x1``:
``x_t = (1 - t) x0 + t x1``, target velocity ``x1 - x0``. Sampling starts from noise (from
0 when deterministic) and takes ``flow_steps`` Euler steps of size ``1 / flow_steps``.

For SAC (``sac_flow``) the Euler steps may add learned Gaussian noise (``step_noise``): then
every step is a Gaussian transition, the log-probability of the whole path is a sum of
Gaussian log-densities (plus the tanh correction), and the critic's gradient reaches the
velocity field through the unrolled steps (the reparameterisation trick, step by step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realrl_policy.models import ActorConfig, mlp, module_device

ATANH_LIMIT = 1.0 - 1e-3
"""Demonstrated actions are clipped to +-this before atanh (an action of exactly 1 has no
pre-tanh value)."""


@dataclass(frozen=True)
class FlowActorConfig(ActorConfig):
    """The flow actor: ActorConfig's network fields plus the chunk and the flow's steps."""

    type: str = 'flow'
    """Actor network type (registered under 'realrl.policies')."""
    chunk: int = 1
    """Actions per inference (H); 1 for single actions (what sac_flow trains)."""
    flow_steps: int = 4
    """Euler steps from noise to a chunk at inference."""
    step_noise: bool = False
    """Each Euler step adds learned Gaussian noise (std bounded by log_std_min/max), which
    gives the path a log-probability; sac_flow needs it, behaviour cloning leaves it off."""

    def __post_init__(self):
        super().__post_init__()
        if self.chunk < 1:
            raise ValueError(f'chunk must be >= 1 (actions per inference), got {self.chunk}')
        if self.flow_steps < 1:
            raise ValueError(f'flow_steps must be >= 1, got {self.flow_steps}')


def time_features(t: torch.Tensor) -> torch.Tensor:
    """[B, 1] flow time in [0, 1] -> [B, 3]: t, sin(2 pi t), cos(2 pi t)."""
    return torch.cat([t, torch.sin(2 * math.pi * t), torch.cos(2 * math.pi * t)], dim=-1)


def to_pre_tanh(chunk: torch.Tensor) -> torch.Tensor:
    """Actions in [-1, 1] -> the flow's (pre-tanh) space."""
    return torch.atanh(chunk.clamp(-ATANH_LIMIT, ATANH_LIMIT))


class FlowHead(nn.Module):
    """Velocity field v(cond, x_t, t) over a flattened chunk, and the flow's sampling."""

    def __init__(self, cond_dim: int, chunk: int, act_dim: int, cfg: FlowActorConfig):
        super().__init__()
        self.chunk, self.act_dim, self.cfg = chunk, act_dim, cfg
        self.flat = chunk * act_dim
        out = 2 * self.flat if cfg.step_noise else self.flat
        self.net = mlp(cond_dim + self.flat + 3, cfg.hidden_sizes, out, cfg.activation)

    def velocity(self, cond: torch.Tensor, x: torch.Tensor, t: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(velocity [B, flat], log-std of the step noise [B, flat] or None)."""
        out = self.net(torch.cat([cond, x, time_features(t)], dim=-1))
        if not self.cfg.step_noise:
            return out, None
        v, raw = out.chunk(2, dim=-1)
        lo, hi = self.cfg.log_std_min, self.cfg.log_std_max
        return v, lo + 0.5 * (hi - lo) * (torch.tanh(raw) + 1.0)

    def loss(self, cond: torch.Tensor, chunk: torch.Tensor,
             weight: torch.Tensor | None = None) -> torch.Tensor:
        """Conditional flow-matching loss for demonstrated chunks [B, H, act_dim]."""
        x1 = to_pre_tanh(chunk.reshape(len(cond), self.flat))
        x0 = torch.randn_like(x1)
        t = torch.rand(len(cond), 1, device=cond.device, dtype=cond.dtype)
        v, _ = self.velocity(cond, (1 - t) * x0 + t * x1, t)
        per_row = ((v - (x1 - x0)) ** 2).mean(dim=-1)
        return weighted_mean(per_row, weight)

    def unroll(self, cond: torch.Tensor, deterministic: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Euler steps from noise: (pre-tanh end point [B, flat], per-value log-probability
        of the path [B, flat] when step_noise, else None). Differentiable through every step."""
        n = len(cond)
        x = cond.new_zeros(n, self.flat)
        if not deterministic:
            x.normal_()
        logp = None
        if self.cfg.step_noise and not deterministic:
            logp = gaussian_log_prob(x, torch.zeros_like(x), torch.zeros_like(x))
        dt = 1.0 / self.cfg.flow_steps
        for k in range(self.cfg.flow_steps):
            t = cond.new_full((n, 1), k * dt)
            v, log_std = self.velocity(cond, x, t)
            mean = x + dt * v
            if logp is None:
                x = mean
                continue
            x = mean + log_std.exp() * torch.randn_like(mean)
            logp = logp + gaussian_log_prob(x, mean, log_std)
        return x, logp

    def sample(self, cond: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Chunks [B, H, act_dim] in (-1, 1)."""
        x, _ = self.unroll(cond, deterministic)
        return torch.tanh(x).reshape(len(cond), self.chunk, self.act_dim)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor
                      ) -> torch.Tensor:
    """Per-value diagonal-Gaussian log-density (the shape of x)."""
    z = (x - mean) / log_std.exp()
    return -0.5 * z ** 2 - log_std - 0.5 * math.log(2 * math.pi)


def tanh_log_det(pre: torch.Tensor) -> torch.Tensor:
    """Per-value log|d tanh(x)/dx| = log(1 - tanh(x)^2), written stably."""
    return 2.0 * (math.log(2.0) - pre - F.softplus(-2.0 * pre))


def weighted_mean(per_row: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of per_row [B], weighted by weight [B] (rows of weight 0 count nothing)."""
    if weight is None:
        return per_row.mean()
    weight = weight.reshape(-1).to(per_row.dtype)
    return (per_row * weight).sum() / weight.sum().clamp_min(1.0)


class FlowActor(nn.Module):
    """Flow-matching policy on the state vector: chunks of H actions in (-1, 1).

    Also an actor SAC can train when chunk is 1 and step_noise is on: ``forward`` returns
    (sampled action, its path log-probability, deterministic action) like GaussianActor.
    """

    config_class = FlowActorConfig

    def __init__(self, cfg: FlowActorConfig, obs_dim: int, act_dim: int):
        super().__init__()
        if not isinstance(cfg, FlowActorConfig):
            raise ValueError(f"the 'flow' actor needs a FlowActorConfig, got "
                             f'{type(cfg).__name__}')
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f'obs_dim and act_dim must be >= 1, got {obs_dim}, {act_dim}')
        self.cfg, self.obs_dim, self.act_dim, self.chunk = cfg, obs_dim, act_dim, cfg.chunk
        self.head = FlowHead(obs_dim, cfg.chunk, act_dim, cfg)

    def sample(self, inputs: dict[str, torch.Tensor], deterministic: bool = False
               ) -> torch.Tensor:
        """Chunks [B, H, act_dim] for inputs['obs'] [B, obs_dim]."""
        return self.head.sample(inputs['obs'], deterministic)

    def imitation_loss(self, inputs: dict[str, torch.Tensor], chunk: torch.Tensor,
                       weight: torch.Tensor | None = None) -> torch.Tensor:
        """Flow-matching loss of demonstrated chunks [B, H, act_dim] (weight [B] optional)."""
        return self.head.loss(inputs['obs'], chunk, weight)

    def forward(self, obs: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SAC's actor call: (action [B, H*act_dim], path log-probability [B, 1],
        deterministic action), the action differentiable through the Euler steps."""
        if not self.cfg.step_noise:
            raise ValueError('this flow actor has no log-probability: set step_noise: true in '
                             'its config to train it with SAC (sac_flow)')
        pre, logp = self.head.unroll(obs)
        terms = logp - tanh_log_det(pre)
        action = torch.tanh(pre)
        with torch.no_grad():
            deterministic = torch.tanh(self.head.unroll(obs, deterministic=True)[0])
        if mask is not None:
            if self.chunk != 1:
                raise ValueError('an action mask needs chunk 1')
            terms, action, deterministic = terms * mask, action * mask, deterministic * mask
        return action, terms.sum(dim=-1, keepdim=True), deterministic

    @property
    def chunk_horizon(self) -> int:
        """Actions per inference (the policy node's chunk interface)."""
        return self.chunk

    @torch.no_grad()
    def act_chunk(self, obs: np.ndarray, deterministic: bool = False, **_inputs) -> np.ndarray:
        """The next H actions (float32, shape (H, act_dim)) for one state vector."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(1, -1))
        x = x.to(module_device(self))
        if x.shape[1] != self.obs_dim:
            raise ValueError(f'observation has {x.shape[1]} values, the flow actor expects '
                             f'{self.obs_dim}')
        return self.sample({'obs': x}, deterministic)[0].float().cpu().numpy()

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """The chunk's first action (act_dim values): the single-action interface."""
        return self.act_chunk(obs, deterministic)[0]
