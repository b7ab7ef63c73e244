"""Reward of the reach task, computed from one state vector (no ROS imports).

The state's named slices come from the robot's layout (name -> (start, stop)), so the
reward needs only the end-effector and target positions, wherever they sit.
"""

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from realrl_reward.reward_kinds import RewardKind

MODES = ('dense', 'sparse')

Layout = dict[str, tuple[int, int]]


@dataclass(frozen=True)
class ReachRewardConfig:
    """The reach reward: mode, success radius and bonus, layout keys."""

    mode: str = 'dense'
    """'dense': minus the distance to the target (m), plus success_bonus on success;
    'sparse': 0 on success, -1 otherwise."""
    success_radius_m: float = 0.05
    """The end effector succeeds when it is within this distance (m) of the target."""
    success_bonus: float = 0.0
    """Added to the dense reward on success (unused in sparse mode)."""
    ee_key: str = 'ee_pos'
    """Layout name of the end-effector position slice (3 values)."""
    target_key: str = 'target_pos'
    """Layout name of the target position slice (3 values)."""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {list(MODES)}, got {self.mode!r}')
        if not (math.isfinite(self.success_radius_m) and self.success_radius_m > 0):
            raise ValueError(f'success_radius_m must be a positive distance in m, got '
                             f'{self.success_radius_m}')
        if not math.isfinite(self.success_bonus):
            raise ValueError(f'success_bonus must be finite, got {self.success_bonus}')
        for field in ('ee_key', 'target_key'):
            if not getattr(self, field):
                raise ValueError(f'{field} must name a slice of the state layout, got an '
                                 'empty string')
        if self.ee_key == self.target_key:
            raise ValueError(f'ee_key and target_key must differ, both are {self.ee_key!r}')

    def needed_state_slices(self) -> dict[str, str]:
        """The state slices this reward reads: parameter name -> slice name."""
        return {'ee_key': self.ee_key, 'target_key': self.target_key}


class ReachReward:
    """Labels states of the reach task with (reward, success)."""

    needs_images = False

    def __init__(self, cfg: ReachRewardConfig = ReachRewardConfig()):
        self.cfg = cfg

    def label(self, state: np.ndarray, layout: Layout,
              images: Mapping[str, np.ndarray] | None = None) -> tuple[float, bool]:
        """Reward and success of arriving in `state`, whose slices `layout` names (camera
        images are not used)."""
        state = np.asarray(state, dtype=np.float64).reshape(-1)
        ee = self._slice(state, layout, self.cfg.ee_key, 'ee_key')
        target = self._slice(state, layout, self.cfg.target_key, 'target_key')
        distance = float(np.linalg.norm(ee - target))
        if not math.isfinite(distance):
            raise ValueError(f'state holds non-finite positions (ee {ee}, target {target})')
        success = distance <= self.cfg.success_radius_m
        if self.cfg.mode == 'sparse':
            return (0.0 if success else -1.0), success
        return -distance + (self.cfg.success_bonus if success else 0.0), success

    @staticmethod
    def _slice(state: np.ndarray, layout: Layout, key: str, field: str) -> np.ndarray:
        try:
            start, stop = layout[key]
        except KeyError:
            raise ValueError(f'{field} {key!r} is not in the state layout; known: '
                             f'{sorted(layout)}') from None
        if stop - start != 3:
            raise ValueError(f'layout slice {key!r} ({start}, {stop}) must hold 3 values '
                             '(x, y, z)')
        end = max(s for _, s in layout.values())
        if state.size != end:
            raise ValueError(f'state has {state.size} values but the layout covers {end}; '
                             'the state and layout come from different robots or versions')
        return state[start:stop]


REWARD = RewardKind(config=ReachRewardConfig, make='realrl_reward.reach_reward:ReachReward')
"""The reach reward as the ``reach`` reward type (``realrl.rewards`` entry point)."""
