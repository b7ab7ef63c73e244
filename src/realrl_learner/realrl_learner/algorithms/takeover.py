"""A scripted person for HG-DAgger: an expert who takes the robot over when the policy
drifts and hands it back later; for benches and tests in simulation. No ROS, no torch.

``run_episode`` drives one episode the way the driver and a teleop device do on a robot:
each step the policy proposes an action; the person compares it with their own and, when
they differ by more than ``drift`` (largest difference of one value, actions in [-1, 1]),
takes over for at least ``hold_steps`` steps. The steps the person drove are flagged as
interventions, as the driver flags a teleop device's actions.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TakeoverRule:
    """When the scripted person takes over and for how long."""

    drift: float = 0.5
    """Take over when the policy's action differs from the expert's by more than this in
    any value (actions in [-1, 1])."""
    hold_steps: int = 5
    """Steps the person drives once they took over, before handing back."""

    def __post_init__(self):
        if not self.drift > 0:
            raise ValueError(f'drift must be > 0, got {self.drift}')
        if self.hold_steps < 1:
            raise ValueError(f'hold_steps must be >= 1, got {self.hold_steps}')


@dataclass
class EpisodeLog:
    """What one episode gave: the rows, who drove each, and the outcome."""

    obs: np.ndarray
    """[T, state_dim] the states acted on."""
    action: np.ndarray
    """[T, act_dim] the actions applied (the person's where they drove)."""
    intervention: np.ndarray
    """[T] True where the person drove."""
    success: bool

    @property
    def steps(self) -> int:
        """T."""
        return len(self.obs)

    @property
    def interventions(self) -> int:
        """Steps the person drove (EpisodeResult.interventions)."""
        return int(self.intervention.sum())


def run_episode(reset: Callable[[], np.ndarray],
                step: Callable[[np.ndarray], tuple[np.ndarray, bool]],
                policy: Callable[[np.ndarray], np.ndarray],
                expert: Callable[[np.ndarray], np.ndarray],
                max_steps: int, rule: TakeoverRule | None = None) -> EpisodeLog:
    """One episode: reset() -> state; step(action) -> (state, success). With rule None the
    policy drives alone (an evaluation); the episode ends on success or after max_steps."""
    obs, rows, actions, flags = reset(), [], [], []
    success, held = False, 0
    for _ in range(max_steps):
        proposed = np.asarray(policy(obs), np.float32)
        wanted = np.asarray(expert(obs), np.float32)
        if rule is not None and held == 0 and np.max(np.abs(proposed - wanted)) > rule.drift:
            held = rule.hold_steps
        person = held > 0
        held = max(held - 1, 0)
        action = wanted if person else proposed
        rows.append(obs)
        actions.append(action)
        flags.append(person)
        obs, success = step(action)
        if success:
            break
    return EpisodeLog(np.asarray(rows, np.float32), np.asarray(actions, np.float32),
                      np.asarray(flags, bool), bool(success))
