"""The policy's frame stacks: each robot's last k frames per camera in its current episode
(no ROS imports).

An image actor with ``encoder.frame_stack`` k > 1 takes each camera's last k frames stacked
along the channels ([H, W, 3k], oldest first). The learner's sampler builds the same stack
from the store's rows (``realrl_replay.frame_stack``): the frames of the robot's k-1 previous
steps of the episode, its first frame repeated before the episode's k-th step.
``FrameStacks`` builds it from the observations as they arrive:

- a new episode_id (or another set of cameras) starts the stack again: k copies of the
  frame;
- the same (episode, step) again (the driver re-sends an observation that got no action)
  replaces the newest frame instead of pushing one;
- a skipped step (an observation lost on the way) is filled with the newest frame, the only
  one the policy has (the store has the real one: the two differ only there);
- an older step than the newest is stacked onto the history without being kept: its action
  is stale and the driver drops it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class _History:
    episode_id: int
    step: int
    frames: list[dict[str, np.ndarray]]
    """The last k observations' frames (camera -> HxWx3), oldest first."""


class FrameStacks:
    """The last ``k`` frames of every robot's cameras, per episode."""

    def __init__(self, k: int):
        if k < 1:
            raise ValueError(f'frame_stack must be >= 1, got {k}')
        self.k = k
        self._robots: dict[str, _History] = {}

    def stack(self, robot_id: str, episode_id: int, step: int,
              frames: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add the observation's frames (camera -> HxWx3 uint8) and return each camera's
        stack (camera -> HxWx3k, oldest first)."""
        frames = {cam: np.asarray(f, np.uint8) for cam, f in frames.items()}
        history = self._robots.get(robot_id)
        if (history is None or history.episode_id != episode_id
                or set(history.frames[-1]) != set(frames)):
            history = _History(episode_id, step, [frames] * self.k)
            self._robots[robot_id] = history
        elif step == history.step:
            history.frames[-1] = frames
        elif step > history.step:
            missed = min(step - history.step - 1, self.k)
            history.frames = (history.frames + [history.frames[-1]] * missed
                              + [frames])[-self.k:]
            history.step = step
        else:
            return self._stacked((history.frames + [frames])[-self.k:])
        return self._stacked(history.frames)

    @staticmethod
    def _stacked(frames: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {cam: np.concatenate([f[cam] for f in frames], axis=-1) for cam in frames[-1]}
