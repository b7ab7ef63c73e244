"""Observation -> action for one or several robots, with weights swapped between steps.

Before the first weights arrive, actions are drawn uniformly inside each robot's bounds
(version 0): that is SAC's initial exploration, done where the robot is. The actor works
in [-1, 1]; actions are scaled to the robot's bounds on the way out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from realrl_policy.models import GaussianActor
from realrl_policy.weights_blob import unpack_actor


@dataclass(frozen=True)
class RobotSpace:
    state_dim: int
    low: np.ndarray
    high: np.ndarray


def to_unit(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Robot-unit action -> [-1, 1] (the actor's range)."""
    return 2.0 * (action - low) / np.maximum(high - low, 1e-12) - 1.0


def from_unit(u: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return np.clip(low + 0.5 * (u + 1.0) * (high - low), low, high)


class InferenceEngine:
    def __init__(self, deterministic: bool = False, seed: int = 0):
        self.deterministic = deterministic
        self.version = 0
        self.actor: GaussianActor | None = None
        self.spaces: dict[str, RobotSpace] = {}
        self.swaps = 0
        self.refused = 0
        self._rng = np.random.default_rng(seed)
        torch.manual_seed(seed)

    def add_robot(self, robot_id: str, state_dim: int, low, high) -> None:
        self.spaces[robot_id] = RobotSpace(int(state_dim), np.asarray(low, np.float32),
                                           np.asarray(high, np.float32))

    def load(self, version: int, blob: bytes) -> str:
        """Swap in the actor of blob if it fits every robot; returns '' or why not."""
        try:
            actor = unpack_actor(blob)
        except ValueError as e:
            self.refused += 1
            return str(e)
        for rid, space in self.spaces.items():
            if (actor.obs_dim, actor.act_dim) != (space.state_dim, space.low.shape[0]):
                self.refused += 1
                return (f'weights v{version} are for obs {actor.obs_dim}/act {actor.act_dim}, '
                        f'robot {rid} has {space.state_dim}/{space.low.shape[0]}')
        self.actor, self.version = actor, int(version)
        self.swaps += 1
        return ''

    def act(self, robot_id: str, state: np.ndarray) -> tuple[np.ndarray, int]:
        space = self.spaces[robot_id]
        if self.actor is None:
            u = self._rng.uniform(-1.0, 1.0, size=space.low.shape[0])
        else:
            u = self.actor.act(state, deterministic=self.deterministic)
        return from_unit(np.asarray(u, np.float32), space.low, space.high), self.version
