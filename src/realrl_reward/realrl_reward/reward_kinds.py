"""Reward functions as plug-ins, chosen by ``type`` (no ROS imports).

A package adds a reward function under the ``realrl.rewards`` entry points of its setup.py,
its value a ``RewardKind``:

    'realrl.rewards': ['my_reward = my_pkg.my_reward:REWARD']

The reward node's ``type`` picks it; its ``params`` build the kind's config class (the reach
reward keeps its own ``reach`` section). The factory is imported only when a node builds
the function, so validating a graph loads no network or simulator.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Protocol

import numpy as np

from realrl_common.config import ConfigError, check
from realrl_common.plugins import REWARDS, load_object, lookup

Layout = Mapping[str, tuple[int, int]]


class RewardFunction(Protocol):
    """What the reward node needs of a reward function."""

    needs_images: bool
    """Whether ``label`` reads camera frames (the node then decodes them)."""

    def label(self, state: np.ndarray, layout: Layout,
              images: Mapping[str, np.ndarray] | None = None) -> tuple[float, bool]:
        """Reward and success of arriving in (state, images); ValueError on bad input."""
        ...


@dataclass(frozen=True)
class RewardKind:
    """A kind of reward function: its parameters and how to build it."""

    config: type
    """Frozen dataclass of the function's parameters (built from the node's ``params``)."""
    make: str
    """'module:callable' taking that config and returning a RewardFunction."""

    def __post_init__(self):
        check(isinstance(self.config, type), f'config must be a dataclass type, got '
                                             f'{self.config!r}')
        check(':' in self.make, f"make must be 'module:callable', got {self.make!r}")

    def factory(self) -> Callable:
        """The make callable (imported now)."""
        return load_object(self.make)


def reward_kind(name: str) -> RewardKind:
    """The reward kind registered as name; ConfigError naming the known ones."""
    kind = lookup(REWARDS, name, 'reward type')
    if not isinstance(kind, RewardKind):
        raise ConfigError(f"reward type {name!r}: its '{REWARDS}' entry point is a "
                          f'{type(kind).__name__}, not a RewardKind')
    return kind
