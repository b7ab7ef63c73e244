"""Image encoders for actors and critics: a small ResNet-style CNN with random-shift
augmentation; no ROS imports.

Frames arrive as uint8 [B, H, W, 3] (the store's layout, HWC), or with ``frame_stack`` k as
[B, H, W, 3k]: a camera's last k frames, oldest first, stacked along the channels (the
sampler and the policy build the stacks, ``realrl_replay.frame_stack``,
``realrl_policy.frame_stack``). The encoder scales them to [0, 1], shifts them at random by
up to ``shift_pad`` pixels while training (DrQ's augmentation; never in eval mode, so the
policy sees the frames as they are), runs a convolutional trunk of residual blocks per camera
and turns each camera's feature map into keypoints with a spatial softmax (the expected
(x, y) of each channel: image-size independent and it keeps where things are). A linear
layer, LayerNorm and tanh make the features. A stack is shifted as one image (its frames by
the same offset), and only the stem's input channels grow with k.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from realrl_policy.precision import SETTINGS, resolve


@dataclass(frozen=True)
class EncoderConfig:
    """The image encoder of image actors (type 'cnn'); unused by state-only actors."""

    cameras: tuple[str, ...] = ()
    """Cameras the encoder sees (their names in the robot description, e.g. [front]); the
    store's fields obs/image_<camera>."""
    channels: int = 32
    """Channels of the convolutional trunk."""
    blocks: int = 2
    """Residual blocks after the stem; each one after the first halves the resolution."""
    feature_dim: int = 64
    """Size of the image features given to the actor and critic heads."""
    shift_pad: int = 4
    """Random shift of up to this many pixels while training (0: no augmentation)."""
    stem_stride: int = 1
    """Stride of the first convolution: 2 makes the trunk work at half the resolution, a
    quarter of the operations (what makes 48x48 frames affordable on a CPU learner)."""
    pretrained: str = ''
    """Local file of trunk weights (a torch state dict, ``save_trunk``) loaded when the
    learner builds the encoder; '' starts from random weights."""
    trunk_dtype: str = 'auto'
    """Number format of the trunk's convolutions: 'float32', 'bfloat16' (weights and
    gradients stay float32; autocast), or 'auto' (bfloat16 where the hardware has it natively:
    2-2.5x faster convolutions on such a CPU; realrl_policy/precision.py)."""
    frame_stack: int = 1
    """Frames per camera the encoder sees: the last k of the episode, stacked along the
    channels (3k input channels; before the episode's k-th step its first frame is
    repeated). 1: one frame, today's network. The actor config travels in the weights
    blob, so the policy stacks as the learner sampled."""

    def __post_init__(self):
        if (isinstance(self.frame_stack, bool) or not isinstance(self.frame_stack, int)
                or self.frame_stack < 1):
            raise ValueError(f'actor.encoder.frame_stack must be an integer >= 1 (1: one frame '
                             f'per camera; k: its last k frames), got {self.frame_stack!r}')
        if self.channels < 1 or self.blocks < 1 or self.feature_dim < 1:
            raise ValueError(f'channels, blocks and feature_dim must be >= 1, got '
                             f'{self.channels}, {self.blocks}, {self.feature_dim}')
        if self.stem_stride not in (1, 2):
            raise ValueError(f'stem_stride must be 1 or 2, got {self.stem_stride}')
        if self.shift_pad < 0:
            raise ValueError(f'shift_pad must be >= 0, got {self.shift_pad}')
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f'cameras repeats a name: {list(self.cameras)}')
        if self.trunk_dtype not in SETTINGS:
            raise ValueError(f'trunk_dtype must be one of {list(SETTINGS)}, got '
                             f'{self.trunk_dtype!r}')


def random_shift(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Each image of [B, C, H, W] shifted by its own random offset in [-pad, pad] pixels
    (edges replicated), by one grid_sample call."""
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode='replicate')
    hp, wp = h + 2 * pad, w + 2 * pad
    ys = (torch.arange(h, dtype=images.dtype) + 0.5) * 2.0 / hp - 1.0
    xs = (torch.arange(w, dtype=images.dtype) + 0.5) * 2.0 / wp - 1.0
    grid = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), dim=-1)  # [h, w, (x, y)]
    offset = torch.randint(0, 2 * pad + 1, (b, 1, 1, 2)).to(images.dtype)
    grid = grid.unsqueeze(0) + offset * torch.tensor([2.0 / wp, 2.0 / hp])
    return F.grid_sample(padded, grid, mode='nearest', align_corners=False)


class ResidualBlock(nn.Module):
    """conv-norm-relu-conv-norm plus a (strided, projected) skip connection."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, stride, 1)
        self.norm1 = nn.GroupNorm(4 if channels % 4 == 0 else 1, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.norm2 = nn.GroupNorm(4 if channels % 4 == 0 else 1, channels)
        self.skip = nn.Identity() if stride == 1 else nn.Conv2d(channels, channels, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(y)) + self.skip(x))


def spatial_softmax(features: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, 2C]: the expected (x, y) in [-1, 1] of each channel's softmax."""
    b, c, h, w = features.shape
    weights = features.reshape(b, c, h * w).softmax(dim=-1).reshape(b, c, h, w)
    ys = torch.linspace(-1.0, 1.0, h, dtype=features.dtype)
    xs = torch.linspace(-1.0, 1.0, w, dtype=features.dtype)
    x = (weights.sum(dim=2) * xs).sum(dim=-1)
    y = (weights.sum(dim=3) * ys).sum(dim=-1)
    return torch.cat([x, y], dim=-1)


class ImageEncoder(nn.Module):
    """uint8 frames of cfg.cameras -> [B, cfg.feature_dim] features in (-1, 1)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        if not cfg.cameras:
            raise ValueError('encoder.cameras is empty: name the cameras the encoder sees, '
                             'e.g. cameras: [front]')
        self.cfg = cfg
        self.keys = tuple(f'image_{cam}' for cam in cfg.cameras)
        self.in_channels = 3 * cfg.frame_stack
        layers: list[nn.Module] = [nn.Conv2d(self.in_channels, cfg.channels, 3, cfg.stem_stride,
                                             1), nn.ReLU()]
        layers += [ResidualBlock(cfg.channels, 1 if i == 0 else 2) for i in range(cfg.blocks)]
        self.trunk = nn.Sequential(*layers)  # shared by the cameras
        self.project = nn.Sequential(
            nn.Linear(2 * cfg.channels * len(cfg.cameras), cfg.feature_dim),
            nn.LayerNorm(cfg.feature_dim), nn.Tanh())

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        points = []
        for key in self.keys:  # one camera at a time: smaller activations stay in cache
            frames = obs[key]
            if frames.shape[-1] != self.in_channels:
                raise ValueError(f'{key}: the encoder takes {self.in_channels} channels '
                                 f'(frame_stack {self.cfg.frame_stack} x rgb), got frames of '
                                 f'shape {tuple(frames.shape)}')
            x = frames.permute(0, 3, 1, 2).to(torch.float32) / 255.0
            if self.training and self.cfg.shift_pad:
                x = random_shift(x, self.cfg.shift_pad)
            points.append(spatial_softmax(self.run_trunk(x)))
        return self.project(torch.cat(points, dim=-1))

    def run_trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk on float frames [B, 3k, H, W], in cfg.trunk_dtype; float32 out."""
        dtype = resolve(self.cfg.trunk_dtype, x.device.type)
        if dtype == torch.float32:
            return self.trunk(x)
        with torch.autocast(x.device.type, dtype=dtype):
            return self.trunk(x).float()


STEM_WEIGHT = '0.weight'
"""The trunk's stem convolution weight [channels, 3 * frame_stack, 3, 3] in its state dict."""


def save_trunk(encoder: ImageEncoder, path: str | Path) -> None:
    """Write the encoder's trunk weights where ``EncoderConfig.pretrained`` can name them."""
    torch.save(encoder.trunk.state_dict(), path)


def load_trunk(encoder: ImageEncoder, path: str | Path) -> None:
    """Load trunk weights written by ``save_trunk``; ValueError naming the file and the fix.

    A trunk saved for single frames (3 input channels) loads into an encoder with
    ``frame_stack`` k > 1 by inflation: each frame's slice of the stem gets the saved stem
    weights divided by k, so a still scene gives the features the trunk gave one frame and
    motion starts from there. Any other difference of input channels is an error."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'encoder.pretrained: no file {str(path)!r}; give the path of trunk '
                         "weights written by realrl_policy.encoders.save_trunk, or '' to start "
                         'from random weights')
    try:
        state = torch.load(path, weights_only=True)
    except (RuntimeError, OSError, EOFError, AttributeError) as e:
        raise ValueError(f'encoder.pretrained: {str(path)!r} is not a torch state dict: '
                         f'{e}') from None
    stem = state.get(STEM_WEIGHT) if isinstance(state, dict) else None
    if stem is not None and stem.ndim == 4 and stem.shape[1] != encoder.in_channels:
        if stem.shape[1] != 3:
            raise ValueError(f'encoder.pretrained: {str(path)!r} is a trunk for frame_stack '
                             f'{stem.shape[1] // 3} ({stem.shape[1]} input channels); this '
                             f'encoder has actor.encoder.frame_stack {encoder.cfg.frame_stack}: '
                             'use the same frame_stack, or a single-frame trunk (inflated)')
        state = {**state, STEM_WEIGHT: stem.repeat(1, encoder.cfg.frame_stack, 1, 1)
                 / encoder.cfg.frame_stack}
    try:
        encoder.trunk.load_state_dict(state)
    except (RuntimeError, AttributeError, TypeError) as e:
        raise ValueError(f'encoder.pretrained: {str(path)!r} does not hold trunk weights of '
                         f'an encoder with channels {encoder.cfg.channels} and blocks '
                         f'{encoder.cfg.blocks}: {e}') from None
