"""The 'cnn' actor type: camera frames through an image encoder, plus the state vector,
into a tanh-squashed Gaussian head; no ROS imports.

Its observation is a mapping: 'state' ([B, obs_dim] float, the vector the 'mlp' actor
takes) and 'image_<camera>' ([B, H, W, 3] uint8) for each of ``cfg.encoder.cameras``; with
``cfg.encoder.frame_stack`` k, [B, H, W, 3k]: the camera's last k frames, oldest first
(the policy's ``frame_stack.FrameStacks`` and the learner's sampler build them).
The encoder is shared with the critics (``realrl_learner.algorithms.networks``): the critic
loss trains it and the actor sees its features detached (``train_encoder`` False), so the
actor loss never moves it; behaviour cloning sets ``train_encoder`` to train it itself.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from realrl_policy.encoders import ImageEncoder
from realrl_policy.models import ActorConfig, GaussianActor, module_device


class CNNActor(nn.Module):
    """Image encoder + state -> GaussianActor head; actions lie in (-1, 1)^act_dim."""

    uses_images = True
    """The policy gives it the observation's camera frames, the trainer samples them."""

    def __init__(self, cfg: ActorConfig, obs_dim: int, act_dim: int):
        super().__init__()
        if obs_dim < 0 or act_dim < 1:
            raise ValueError(f'obs_dim must be >= 0 and act_dim >= 1, got {obs_dim}, {act_dim}')
        self.cfg = cfg
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.encoder = ImageEncoder(cfg.encoder)
        self.head = GaussianActor(cfg, cfg.encoder.feature_dim + obs_dim, act_dim)
        self.train_encoder = False

    def features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The head's input: image features (detached unless train_encoder) and state."""
        image = self.encoder(obs)
        if not self.train_encoder:
            image = image.detach()
        return torch.cat([image, obs['state']], dim=-1)

    def forward(self, obs: dict[str, torch.Tensor], mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sampled action, its log-probability [B, 1], deterministic action), as
        GaussianActor.forward."""
        return self.head(self.features(obs), mask)

    @torch.no_grad()
    def act(self, obs: dict, deterministic: bool = False) -> np.ndarray:
        """Action (float32, act_dim values) for one observation: {'state': vector,
        'image_<camera>': HxWx3 uint8 frame (HxWx3k: the last k, with frame_stack k), ...}."""
        batch = {'state': torch.as_tensor(np.asarray(obs['state'], np.float32).reshape(1, -1))}
        if batch['state'].shape[1] != self.obs_dim:
            raise ValueError(f'observation has {batch["state"].shape[1]} state values, the '
                             f'actor expects {self.obs_dim}')
        for key in self.encoder.keys:
            if key not in obs:
                raise ValueError(f'observation has no frame of camera {key[len("image_"):]!r}; '
                                 f'the actor sees {list(self.cfg.encoder.cameras)}')
            frame = np.asarray(obs[key], np.uint8)
            channels = self.encoder.in_channels
            if frame.ndim != 3 or frame.shape[2] != channels:
                what = ('an HxWx3 rgb8 frame' if channels == 3 else
                        f'HxWx{channels}: {channels // 3} rgb8 frames stacked (frame_stack)')
                raise ValueError(f'camera {key[len("image_"):]!r}: expected {what}, got shape '
                                 f'{frame.shape}')
            batch[key] = torch.from_numpy(frame[None].copy())
        device = module_device(self)
        sampled, _, mean = self.forward({k: v.to(device) for k, v in batch.items()})
        return (mean if deterministic else sampled)[0].cpu().numpy()
