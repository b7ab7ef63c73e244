"""A small vision-language-action model ('vla_tiny'): camera image + instruction + state ->
a chunk of H actions; trains on a CPU in seconds, so the whole VLA path runs in CI.

Shaped like the large ones (pi0, SmolVLA), at toy size and with nothing to download:

- vision: a three-layer CNN over the image (channels first, uint8 or float in [0, 1]);
- language: the instruction's UTF-8 bytes as tokens (``tokenize``), embedded, a 1-D
  convolution over them and a max over the words' positions;
- state: a linear layer;
- the three concatenated, an MLP trunk, and an action-chunk head: a flow-matching head
  (``FlowHead``, as pi0) or a plain regression of the chunk (``head: regression``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from realrl_policy.actors.flow import FlowActorConfig, FlowHead, weighted_mean
from realrl_policy.models import ACTIVATIONS, mlp

PAD = 0
"""Token of padding; a byte b is token b + 1."""
VOCAB = 257


def tokenize(text: str, max_tokens: int) -> np.ndarray:
    """An instruction -> int64 tokens (UTF-8 bytes + 1), padded with PAD to max_tokens;
    ValueError if it is longer (nothing is cut off silently)."""
    data = text.encode('utf-8')
    if len(data) > max_tokens:
        raise ValueError(f'instruction {text[:40]!r}... has {len(data)} bytes, the model reads '
                         f'at most max_tokens={max_tokens}: shorten it or raise max_tokens')
    tokens = np.full(max_tokens, PAD, np.int64)
    tokens[:len(data)] = np.frombuffer(data, np.uint8).astype(np.int64) + 1
    return tokens


@dataclass(frozen=True)
class VLATinyConfig(FlowActorConfig):
    """The tiny VLA: the flow actor's fields plus the image, instruction and head."""

    type: str = 'vla_tiny'
    """Actor network type (registered under 'realrl.policies')."""
    chunk: int = 4
    """Actions per inference (H)."""
    image_shape: tuple[int, ...] = (3, 32, 32)
    """Channels, height and width of the camera image the model reads."""
    max_tokens: int = 32
    """Longest instruction in UTF-8 bytes."""
    embed_dim: int = 64
    """Width of each modality's embedding and of the trunk's output."""
    head: str = 'flow'
    """'flow' (flow matching, flow_steps Euler steps) or 'regression' (the chunk directly,
    trained by mean squared error)."""

    def __post_init__(self):
        super().__post_init__()
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f'image_shape must be (channels, height, width), got '
                             f'{self.image_shape}')
        if min(self.image_shape[1:]) < 8:
            raise ValueError(f'image_shape {self.image_shape}: height and width must be >= 8')
        if self.max_tokens < 1 or self.embed_dim < 1:
            raise ValueError(f'max_tokens and embed_dim must be >= 1, got {self.max_tokens}, '
                             f'{self.embed_dim}')
        if self.head not in ('flow', 'regression'):
            raise ValueError(f"head must be 'flow' or 'regression', got {self.head!r}")
        if self.step_noise:
            raise ValueError('vla_tiny trains by imitation (bc, hg_dagger): leave step_noise off')


class VLATiny(nn.Module):
    """Image + instruction + state -> chunks of H actions in (-1, 1)."""

    config_class = VLATinyConfig

    def __init__(self, cfg: VLATinyConfig, obs_dim: int, act_dim: int):
        super().__init__()
        if not isinstance(cfg, VLATinyConfig):
            raise ValueError(f"the 'vla_tiny' actor needs a VLATinyConfig, got "
                             f'{type(cfg).__name__}')
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f'obs_dim and act_dim must be >= 1, got {obs_dim}, {act_dim}')
        self.cfg, self.obs_dim, self.act_dim, self.chunk = cfg, obs_dim, act_dim, cfg.chunk
        d, act = cfg.embed_dim, ACTIVATIONS[cfg.activation]
        self.vision = nn.Sequential(
            nn.Conv2d(cfg.image_shape[0], 16, 5, stride=2, padding=2), act(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), act(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), act(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, d))
        self.embed = nn.Embedding(VOCAB, d, padding_idx=PAD)
        self.words = nn.Conv1d(d, d, 3, padding=1)
        self.state = nn.Linear(obs_dim, d)
        self.trunk = mlp(3 * d, cfg.hidden_sizes, d, cfg.activation)
        if cfg.head == 'flow':
            self.head = FlowHead(d, cfg.chunk, act_dim, cfg)
        else:
            self.head = nn.Sequential(ACTIVATIONS[cfg.activation](),
                                      nn.Linear(d, cfg.chunk * act_dim))

    def encode(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Inputs 'obs' [B, obs_dim], 'image' [B, C, H, W], 'instruction' [B, max_tokens]
        -> the trunk's features [B, embed_dim]."""
        image = inputs['image']
        if tuple(image.shape[1:]) != tuple(self.cfg.image_shape):
            raise ValueError(f"inputs['image'] is {tuple(image.shape)}; the model reads "
                             f'[B, *{self.cfg.image_shape}] (channels first): resize the '
                             'camera or set image_shape')
        image = image.float() / 255.0 if not image.is_floating_point() else image
        tokens = inputs['instruction'].long()
        pad = (tokens == PAD).unsqueeze(-1)
        words = self.words(self.embed(tokens).transpose(1, 2)).transpose(1, 2)
        text = words.masked_fill(pad, -1e4).amax(dim=1)
        feats = [self.vision(image), text, self.state(inputs['obs'].float())]
        return self.trunk(torch.cat(feats, dim=-1))

    def sample(self, inputs: Mapping[str, torch.Tensor], deterministic: bool = False
               ) -> torch.Tensor:
        """Chunks [B, H, act_dim] in (-1, 1)."""
        cond = self.encode(inputs)
        if self.cfg.head == 'flow':
            return self.head.sample(cond, deterministic)
        return torch.tanh(self.head(cond)).reshape(len(cond), self.chunk, self.act_dim)

    def imitation_loss(self, inputs: Mapping[str, torch.Tensor], chunk: torch.Tensor,
                       weight: torch.Tensor | None = None) -> torch.Tensor:
        """Flow-matching loss (or MSE for 'regression') of demonstrated chunks."""
        cond = self.encode(inputs)
        if self.cfg.head == 'flow':
            return self.head.loss(cond, chunk, weight)
        pred = torch.tanh(self.head(cond))
        per_row = ((pred - chunk.reshape(len(cond), -1)) ** 2).mean(dim=-1)
        return weighted_mean(per_row, weight)

    def forward(self, obs, mask=None):
        """No SAC for this model: it trains by imitation."""
        raise ValueError("the 'vla_tiny' actor trains by imitation (algorithm bc or "
                         'hg_dagger), not by SAC: it has no log-probability')

    def inputs(self, obs: Mapping) -> dict[str, torch.Tensor]:
        """One observation {'state', 'image' (H, W, C uint8, as cameras give it),
        'instruction' (text)} -> a batch of one for encode."""
        missing = [k for k in ('state', 'image', 'instruction') if k not in obs]
        if missing:
            raise ValueError(f'the vla_tiny observation lacks {missing}; it needs state, '
                             'image (H, W, C) and instruction (text)')
        state = np.asarray(obs['state'], np.float32).reshape(1, -1)
        if state.shape[1] != self.obs_dim:
            raise ValueError(f'state has {state.shape[1]} values, the model expects '
                             f'{self.obs_dim}')
        image = np.asarray(obs['image'])
        if image.ndim != 3:
            raise ValueError(f'image must be (height, width, channels), got {image.shape}')
        return {'obs': torch.from_numpy(state),
                'image': torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None],
                'instruction': torch.from_numpy(tokenize(str(obs['instruction']),
                                                         self.cfg.max_tokens))[None]}

    @torch.no_grad()
    def act(self, obs: Mapping, deterministic: bool = False) -> np.ndarray:
        """The next H actions (float32, (H, act_dim)) for one observation (see inputs)."""
        return self.sample(self.inputs(obs), deterministic)[0].numpy()
