"""The success classifier's network, its training and its weights file (torch, no ROS).

A small CNN takes one frame of each of its cameras (uint8 RGB, stacked along channels) and
gives the logit of "this is a success". Training uses random shifts of a few pixels (the
augmentation of image-based RL), a class-balanced loss, Adam, and one CPU thread unless
told otherwise. The weights file holds the network's state and what it expects: cameras,
image size, and the accuracy it was trained to.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

FORMAT = 'realrl_success_classifier/1'


class SuccessNet(nn.Module):
    """Frames (N, H, W, 3 * cameras) uint8 -> success logits (N,)."""

    def __init__(self, cameras: int):
        super().__init__()
        self.cameras = cameras
        self.body = nn.Sequential(
            nn.Conv2d(3 * cameras, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Logits of success for uint8 frames (N, H, W, C)."""
        x = frames.permute(0, 3, 1, 2).float().div_(255.0)
        return self.body(x).squeeze(1)


@dataclass(frozen=True)
class TrainConfig:
    """How the classifier trains."""

    epochs: int = 12
    """Passes over the training frames."""
    batch_size: int = 64
    """Frames per gradient step."""
    lr: float = 1e-3
    """Adam's learning rate."""
    shift_px: int = 4
    """Largest random shift (pixels) of each training frame; 0: no augmentation."""
    seed: int = 0
    """Seed of the initial weights, the batch order and the shifts."""
    threads: int = 1
    """CPU threads torch may use."""

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f'epochs and batch_size must be >= 1, got {self.epochs} and '
                             f'{self.batch_size}')
        if not self.lr > 0 or self.shift_px < 0 or self.threads < 1:
            raise ValueError(f'lr must be > 0, shift_px >= 0 and threads >= 1, got '
                             f'{self.lr}, {self.shift_px}, {self.threads}')


def random_shift(frames: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Each frame (N, H, W, C) moved by up to pad pixels, its edges repeated."""
    if pad == 0:
        return frames
    n, h, w, _ = frames.shape
    padded = torch.nn.functional.pad(frames.permute(0, 3, 1, 2).float(),
                                     (pad, pad, pad, pad), mode='replicate')
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    return out.permute(0, 2, 3, 1).to(frames.dtype)


def train(frames: np.ndarray, labels: np.ndarray, cameras: int,
          cfg: TrainConfig = TrainConfig()) -> SuccessNet:
    """A classifier trained on frames (N, H, W, 3 * cameras) uint8 and labels (N,) bool."""
    if frames.ndim != 4 or frames.shape[-1] != 3 * cameras or frames.dtype != np.uint8:
        raise ValueError(f'frames must be (N, H, W, {3 * cameras}) uint8, got '
                         f'{frames.shape} {frames.dtype}')
    labels = np.asarray(labels, bool)
    if len(labels) != len(frames) or labels.all() or not labels.any():
        raise ValueError(f'need one label per frame and both classes; got {len(labels)} labels '
                         f'for {len(frames)} frames, {int(labels.sum())} successes')
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = SuccessNet(cameras)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    x, y = torch.from_numpy(frames), torch.from_numpy(labels.astype(np.float32))
    pos_weight = torch.tensor((len(labels) - labels.sum()) / labels.sum(), dtype=torch.float32)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    net.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            loss = loss_fn(net(random_shift(x[idx], cfg.shift_px, gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    return net


@torch.no_grad()
def success_probability(net: SuccessNet, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """P(success) of each frame (N, H, W, C) uint8."""
    x = torch.from_numpy(np.ascontiguousarray(frames))
    out = [torch.sigmoid(net(x[i:i + batch])) for i in range(0, len(x), batch)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def save(path: str | os.PathLike, net: SuccessNet, cameras: tuple[str, ...],
         image_size: tuple[int, int], info: dict | None = None) -> None:
    """Write the weights file (via a temporary file, so a crash leaves no half file)."""
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.tmp')
    torch.save({'format': FORMAT, 'cameras': list(cameras), 'image_size': list(image_size),
                'state_dict': net.state_dict(), 'info': dict(info or {})}, tmp)
    os.replace(tmp, path)


def load(path: str | os.PathLike) -> tuple[SuccessNet, dict]:
    """(network, {cameras, image_size, info}) of a weights file; ValueError if it is not
    one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'classifier weights {str(path)!r}: no such file; train one with '
                         '`python -m realrl_reward.classifier_tool train --frames F --out '
                         f'{path.name}`')
    try:
        blob = torch.load(path, map_location='cpu', weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(f'classifier weights {str(path)!r} cannot be read ({e})') from None
    if not isinstance(blob, dict) or blob.get('format') != FORMAT:
        raise ValueError(f'{str(path)!r} is not a success classifier of format {FORMAT}')
    net = SuccessNet(len(blob['cameras']))
    net.load_state_dict(blob['state_dict'])
    net.eval()
    return net, {'cameras': tuple(blob['cameras']), 'image_size': tuple(blob['image_size']),
                 'info': blob['info']}
