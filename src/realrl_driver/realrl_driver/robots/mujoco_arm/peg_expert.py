"""A scripted expert for peg insertion (no ROS imports).

It reads the hole's position from the simulation (privileged: a policy never sees it),
moves the peg tip above the hole at a safe height, aligns it, then pushes it down into the
hole, correcting sideways as it goes. Optional Gaussian action noise and a constant aim
offset make it a perturbed expert (varied demonstrations, near misses for a classifier).
"""
from __future__ import annotations

import numpy as np

from realrl_driver.robots.mujoco_arm.peg_task import PegInsertionSim

SAFE_HEIGHT_M = 0.025
"""Height above the block's top at which the tip moves sideways."""
ALIGNED_M = 0.0015
"""Largest sideways error (m) at which the tip starts down into the hole."""
SLOW_ZONE_M = 0.01
"""Within this height above the block's top, the descent runs at half speed."""


class PegExpert:
    """Actions (end-effector displacements in [-1, 1]) that insert the peg."""

    def __init__(self, sim: PegInsertionSim, noise: float = 0.0,
                 aim_offset_m: tuple[float, float] = (0.0, 0.0), seed: int | None = None):
        self.sim = sim
        self.noise = float(noise)
        """Std of the Gaussian noise added to every action component."""
        self.aim_offset = np.asarray(aim_offset_m, dtype=np.float64)
        """Where the expert aims, relative to the hole's centre (m); nonzero misses."""
        self._rng = np.random.default_rng(seed)

    def act(self) -> np.ndarray:
        """The action for the simulation's current state."""
        sim = self.sim
        tip, top = sim.ee_pos, sim.hole_top
        aim = top[:2] + self.aim_offset
        off = np.linalg.norm(aim - tip[:2])
        in_hole = tip[2] < top[2] - 0.002 and off < sim.hole_half_width
        if off > ALIGNED_M and not in_hole:
            z = max(tip[2], top[2] + SAFE_HEIGHT_M) if off > 0.01 else tip[2]
            goal = np.array([aim[0], aim[1], z])
            limit = 1.0
        else:
            goal = np.array([aim[0], aim[1], top[2] - sim.task.insert_depth_m - 0.01])
            near = abs(tip[2] - top[2]) < SLOW_ZONE_M
            limit = 0.5 if near else 1.0
        action = np.clip((goal - tip) / sim.cfg.max_ee_step_m, -limit, limit)
        if self.noise > 0:
            action = action + self._rng.normal(0.0, self.noise, action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def run_episode(sim: PegInsertionSim, expert: PegExpert, seed: int | None,
                max_steps: int) -> tuple[bool, int]:
    """One episode of the expert from reset(seed): (success, steps taken)."""
    sim.reset(seed)
    for step in range(1, max_steps + 1):
        sim.apply(expert.act())
        if sim.outcome().success:
            return True, step
    return False, max_steps
