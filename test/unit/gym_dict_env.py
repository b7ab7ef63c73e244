"""A toy environment another package would register: importing this module registers
'DictPointReach-v0', whose observations are a Dict the way manipulation suites give them.

A point moves in [-1, 1]^2 toward a goal (action: a velocity, 0.2 per step); observations are
{'agent': {'pos': 2 values}, 'goal': 2 values, 'pixels': 16 x 16 x 3 uint8} (the image is black
but for the point, white, and the goal, red); reward minus the distance; success (and
termination) within 0.15 of the goal.
"""
import gymnasium
import numpy as np
from gymnasium import spaces

SIZE = 16


def pixel(xy: np.ndarray) -> tuple[int, int]:
    """(row, column) of a position in the image."""
    col, row = np.clip(((np.asarray(xy) + 1) / 2 * SIZE).astype(int), 0, SIZE - 1)
    return int(row), int(col)


class DictPointReach(gymnasium.Env):
    """See the module docstring."""

    def __init__(self):
        box = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Dict({
            'agent': spaces.Dict({'pos': box}), 'goal': box,
            'pixels': spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)})
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _obs(self):
        image = np.zeros((SIZE, SIZE, 3), np.uint8)
        image[pixel(self.goal)] = (255, 0, 0)
        image[pixel(self.pos)] = (255, 255, 255)
        return {'agent': {'pos': self.pos.copy()}, 'goal': self.goal.copy(), 'pixels': image}

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.5, 0.5, 2).astype(np.float32)
        self.goal = self.np_random.uniform(-0.9, 0.9, 2).astype(np.float32)
        return self._obs(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.2 * np.asarray(action, np.float32), -1, 1)
        dist = float(np.linalg.norm(self.pos - self.goal))
        return self._obs(), -dist, dist < 0.15, False, {'is_success': dist < 0.15}


gymnasium.register('DictPointReach-v0', entry_point=DictPointReach, max_episode_steps=50)
