"""A learned success classifier as a reward function (the ``classifier`` reward type).

It labels an observation from its camera frames: success when the classifier's probability
reaches ``threshold`` (the driver then ends the episode), with ``success_reward`` or
``failure_reward``. The weights come from ``python -m realrl_reward.classifier_tool train``;
torch is imported only when the function is built (validating a config does not need it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from realrl_reward.reward_kinds import Layout, RewardKind


@dataclass(frozen=True)
class ClassifierRewardConfig:
    """The classifier reward: weights, threshold and the two reward values."""

    model_path: str = ''
    """Weights file written by ``classifier_tool train`` (required)."""
    threshold: float = 0.5
    """Success when P(success) >= threshold."""
    success_reward: float = 1.0
    """Reward of a success."""
    failure_reward: float = 0.0
    """Reward of any other observation."""

    def __post_init__(self):
        if not self.model_path:
            raise ValueError('model_path must name the classifier weights file; train one with '
                             '`python -m realrl_reward.classifier_tool train`')
        if not 0 < self.threshold < 1:
            raise ValueError(f'threshold must be in (0, 1), got {self.threshold}')
        for name in ('success_reward', 'failure_reward'):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f'{name} must be finite, got {getattr(self, name)}')


class ClassifierReward:
    """Labels observations with the success classifier's verdict on their camera frames."""

    needs_images = True

    def __init__(self, cfg: ClassifierRewardConfig):
        import torch

        from realrl_reward import classifier_net  # torch, only where the reward runs
        torch.set_num_threads(1)  # one frame per observation: a second core buys nothing
        self.cfg = cfg
        self._net_module = classifier_net
        self.net, meta = classifier_net.load(cfg.model_path)
        self.cameras: tuple[str, ...] = meta['cameras']
        self.image_size: tuple[int, int] = meta['image_size']

    def probability(self, images: Mapping[str, np.ndarray]) -> float:
        """P(success) of one observation's frames (camera -> H x W x 3 uint8)."""
        missing = [c for c in self.cameras if c not in images]
        if missing:
            raise ValueError(f'the classifier needs cameras {list(self.cameras)}; the '
                             f'observation lacks {missing} (it has {sorted(images)}); add them '
                             'to the driver\'s `cameras`')
        frames = []
        for cam in self.cameras:
            frame = np.asarray(images[cam])
            if frame.shape != (*self.image_size, 3) or frame.dtype != np.uint8:
                raise ValueError(f'camera {cam!r} frame is {frame.shape} {frame.dtype}; the '
                                 f'classifier was trained on {(*self.image_size, 3)} uint8: '
                                 'set the driver\'s image_size to match or retrain')
            frames.append(frame)
        stacked = np.concatenate(frames, axis=-1)[None]
        return float(self._net_module.success_probability(self.net, stacked)[0])

    def label(self, state: np.ndarray, layout: Layout,
              images: Mapping[str, np.ndarray] | None = None) -> tuple[float, bool]:
        """Reward and success of an observation from its frames (the state is not read)."""
        success = self.probability(images or {}) >= self.cfg.threshold
        return (self.cfg.success_reward if success else self.cfg.failure_reward), success


REWARD = RewardKind(config=ClassifierRewardConfig,
                    make='realrl_reward.classifier_reward:ClassifierReward')
"""The success classifier as the ``classifier`` reward type (``realrl.rewards``)."""
