"""Entry point: a simulated MuJoCo arm as a realrl robot driver."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from realrl_common.config import check
from realrl_driver.driver_node import run_driver
from realrl_driver.episode_loop import LoopConfig
from realrl_driver.mujoco_arm import ArmSimConfig, MujocoArmSim


@dataclass(frozen=True)
class MujocoArmDriverConfig(LoopConfig):
    arm: ArmSimConfig = field(default_factory=ArmSimConfig)
    """The simulated arm (model, workspace, IK); its clock is the driver's control_hz."""
    replay_wait_s: float = 10.0
    """How long activation waits for the replay node's sender state (0: don't ask)."""
    timing_log: str = ''
    """If set, every control tick's time is appended to this file (for benchmarks)."""

    def __post_init__(self):
        super().__post_init__()
        check(self.replay_wait_s >= 0, f'replay_wait_s must be >= 0, got {self.replay_wait_s}')


def make_arm(cfg: MujocoArmDriverConfig) -> MujocoArmSim:
    return MujocoArmSim(dataclasses.replace(cfg.arm, control_hz=cfg.control_hz))


def main(args=None):
    run_driver('driver', MujocoArmDriverConfig, make_arm, kind='mujoco_arm', args=args)


if __name__ == '__main__':
    main()
