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
from realrl_policy.models import ACTIVATIONS, mlp, module_device

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


def as_tokens(instruction: torch.Tensor, max_tokens: int) -> torch.Tensor:
    """int64 tokens as they are, or zero-padded UTF-8 bytes (uint8, the store's column) as
    tokens, both [B, max_tokens]; ValueError if an instruction is longer."""
    if instruction.dtype == torch.uint8:
        b = instruction.long()
        instruction = torch.where(b > 0, b + 1, torch.full_like(b, PAD))
    instruction = instruction.long()
    if instruction.shape[1] > max_tokens:
        if (instruction[:, max_tokens:] != PAD).any():
            raise ValueError(f'an instruction is longer than max_tokens={max_tokens} bytes: '
                             'raise max_tokens')
        instruction = instruction[:, :max_tokens]
    elif instruction.shape[1] < max_tokens:
        instruction = torch.nn.functional.pad(instruction, (0, max_tokens - instruction.shape[1]))
    return instruction


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
    camera: str = ''
    """Camera whose frames the model reads ('': the robot's only camera)."""

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
        """Inputs 'obs' [B, obs_dim], 'image' [B, C, H, W] or [B, H, W, C] (uint8, or float
        in [0, 1]) and 'instruction' [B, L] (int64 tokens, or the store's zero-padded UTF-8
        bytes as uint8) -> the trunk's features [B, embed_dim]."""
        feats = [self.vision(self.channels_first(inputs['image'])),
                 self.read(as_tokens(inputs['instruction'], self.cfg.max_tokens)),
                 self.state(inputs['obs'].float())]
        return self.trunk(torch.cat(feats, dim=-1))

    def channels_first(self, image: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] float in [0, 1] from either layout; ValueError if the size is not
        image_shape's."""
        c, h, w = self.cfg.image_shape
        if tuple(image.shape[1:]) == (h, w, c):
            image = image.permute(0, 3, 1, 2)
        elif tuple(image.shape[1:]) != (c, h, w):
            raise ValueError(f"inputs['image'] is {tuple(image.shape)}; the model reads "
                             f'{h}x{w} frames of {c} channels: resize the camera or set '
                             'image_shape')
        return image.float() / 255.0 if not image.is_floating_point() else image

    def read(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens [B, max_tokens] -> the instruction's features [B, embed_dim]."""
        pad = (tokens == PAD).unsqueeze(-1)
        words = self.words(self.embed(tokens).transpose(1, 2)).transpose(1, 2)
        return words.masked_fill(pad, -1e4).amax(dim=1)

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

    @property
    def chunk_horizon(self) -> int:
        """Actions per inference (the policy node's chunk interface)."""
        return self.chunk

    takes_language = True
    """act_chunk reads the episode's instruction (text)."""
    takes_images = True
    """act_chunk reads the camera frames (camera -> H x W x 3 uint8)."""

    def inputs(self, state: np.ndarray, instruction: str,
               images: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """One observation -> a batch of one for encode: the state, the instruction's text
        and the frame of cfg.camera (the only camera when that is '')."""
        state = np.asarray(state, np.float32).reshape(1, -1)
        if state.shape[1] != self.obs_dim:
            raise ValueError(f'state has {state.shape[1]} values, the model expects '
                             f'{self.obs_dim}')
        image = np.asarray(camera_frame(images or {}, self.cfg.camera))
        if image.ndim != 3:
            raise ValueError(f'a camera frame must be (height, width, channels), got '
                             f'{image.shape}')
        device = module_device(self)
        return {'obs': torch.from_numpy(state).to(device),
                'image': torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
                .to(device),
                'instruction': torch.from_numpy(tokenize(str(instruction), self.cfg.max_tokens))
                [None].to(device)}

    @torch.no_grad()
    def act_chunk(self, obs: np.ndarray, deterministic: bool = False, instruction: str = '',
                  images: Mapping[str, np.ndarray] | None = None, **_inputs) -> np.ndarray:
        """The next H actions (float32, (H, act_dim)) for one state, instruction and frame."""
        chunk = self.sample(self.inputs(obs, instruction, images or {}), deterministic)[0]
        return chunk.float().cpu().numpy()

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Not served one action at a time: it needs the instruction and a camera frame."""
        raise ValueError("the 'vla_tiny' actor needs the instruction and a camera frame: "
                         'serve it through act_chunk (the policy node\'s chunk mode)')


def camera_frame(images: Mapping[str, np.ndarray], camera: str) -> np.ndarray:
    """The frame of camera (of the only camera when camera is ''); ValueError naming the
    cameras there are otherwise."""
    if camera:
        if camera not in images:
            raise ValueError(f'no frame of camera {camera!r}; the observation has '
                             f'{sorted(images)}: set the actor\'s camera to one of them')
        return images[camera]
    if len(images) != 1:
        raise ValueError(f'the observation has cameras {sorted(images)}; the vla_tiny actor '
                         'reads one: name it in its config (camera)')
    return next(iter(images.values()))
