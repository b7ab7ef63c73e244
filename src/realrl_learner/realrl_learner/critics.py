"""Critics as one batched network: n independent Q(s, a) MLPs whose layers are each one
batched matrix product. SAC's twin critics are n = 2 (``TwinQ``), RLPD's ensemble n = 10.

Layer k holds every member's weights stacked, ``weights[k]`` [n, in, out] and ``biases[k]``
[n, 1, out]; each member is initialised like ``nn.Linear`` layers, independently. With
``layer_norm`` a LayerNorm follows each hidden layer (its gain and bias shared by the
members, over each member's features). With ``hidden_dtype`` bfloat16 the products of the
hidden layers (nearly all the work) run in bfloat16 on float32 weights, and the output layer
and the LayerNorms in float32, so Q values keep float32 resolution. A ReLU stack without
LayerNorm runs as one autograd node with a hand-written backward (``batched_mlp``; the same
gradients).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from realrl_learner.batched_mlp import relu_mlp
from realrl_policy.models import ACTIVATIONS


class CriticStack(nn.Module):
    """n Q(s, a) MLPs evaluated at once: ``forward(obs, action)`` gives Q values [n, B, 1]."""

    def __init__(self, n: int, obs_dim: int, act_dim: int, hidden_sizes: tuple[int, ...],
                 activation: str, hidden_dtype: torch.dtype = torch.float32,
                 layer_norm: bool = False):
        super().__init__()
        self.n = n
        sizes = [obs_dim + act_dim, *(int(h) for h in hidden_sizes), 1]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default init of weight and bias
            self.weights.append(torch.empty(n, fan_in, fan_out).uniform_(-bound, bound))
            self.biases.append(torch.empty(n, 1, fan_out).uniform_(-bound, bound))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for width in sizes[1:-1]
                                   if layer_norm)
        self.activation = ACTIVATIONS[activation]()
        self.hidden_dtype = hidden_dtype

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        dtype = self.hidden_dtype
        x = torch.cat([obs, action], dim=-1)
        if isinstance(self.activation, nn.ReLU) and not self.norms:  # one autograd node
            return relu_mlp(x, self.weights, self.biases, dtype)
        x = x.to(dtype).unsqueeze(0).expand(self.n, *x.shape)
        *hidden, (w_out, b_out) = zip(self.weights, self.biases)
        for k, (weight, bias) in enumerate(hidden):
            x = torch.baddbmm(bias.to(dtype), x, weight.to(dtype))
            if self.norms:
                norm = self.norms[k]
                x = F.layer_norm(x.float(), norm.normalized_shape, norm.weight, norm.bias,
                                 norm.eps).to(dtype)
            x = self.activation(x)
        return torch.baddbmm(b_out, x.float(), w_out)

    @staticmethod
    def sequential_names(state: dict[str, torch.Tensor]) -> dict[str, str]:
        """Old key -> this module's key, for a state dict of RLPD's earlier ``net.<i>`` layout
        (an ``nn.Sequential`` of ensemble linear layers, whose weights [n, in, out] and biases
        [n, 1, out] are laid out as here, LayerNorms and activations). What precedes 'net.'
        (an encoder's critic: 'critic.') is kept; keys without 'net.' keep their name."""
        names, linear, norms = {}, {}, {}
        for key, value in state.items():
            head, sep, tail = key.partition('net.')
            if not sep:
                names[key] = key
                continue
            index, param = tail.split('.')
            table = linear if value.ndim == 3 else norms  # LayerNorm's are vectors
            table.setdefault((head, int(index)), []).append((key, param))
        for k, ((head, _), params) in enumerate(sorted(linear.items())):
            for key, param in params:
                names[key] = f'{head}{"weights" if param == "weight" else "biases"}.{k}'
        for k, ((head, _), params) in enumerate(sorted(norms.items())):
            for key, param in params:
                names[key] = f'{head}norms.{k}.{param}'
        return names


class TwinQ(CriticStack):
    """SAC's two critics: a CriticStack of 2 whose forward gives (Q1, Q2), each [B, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: tuple[int, ...],
                 activation: str, hidden_dtype: torch.dtype = torch.float32):
        super().__init__(2, obs_dim, act_dim, hidden_sizes, activation, hidden_dtype)

    def forward(self, obs: torch.Tensor,
                action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = super().forward(obs, action)
        return q[0], q[1]

    @staticmethod
    def from_separate(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This module's state dict from one of two ``nn.Sequential`` MLPs 'q1.*', 'q2.*'
        (how checkpoints before the fused critics held them)."""
        linear = sorted({int(k.split('.')[1]) for k in state if k.startswith('q1.')})
        out = {}
        for k, index in enumerate(linear):
            out[f'weights.{k}'] = torch.stack([state[f'q{i}.{index}.weight'].T for i in (1, 2)])
            out[f'biases.{k}'] = torch.stack([state[f'q{i}.{index}.bias'][None] for i in (1, 2)])
        return out
