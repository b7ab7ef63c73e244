"""Entry point: a simulated MuJoCo arm as a realrl robot driver."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from realrl_common.config import check
from realrl_driver.driver_node import run_driver
from realrl_driver.episode_loop import LoopConfig
from realrl_driver.mujoco_arm import ArmSimConfig, MujocoArmSim, mujoco  # sets MUJOCO_GL first


@dataclass(frozen=True)
class MujocoArmDriverConfig(LoopConfig):
    arm: ArmSimConfig = field(default_factory=ArmSimConfig)
    """The simulated arm (model, workspace, IK); its clock is the driver's control_hz."""
    replay_wait_s: float = 10.0
    """After this long without an answer from the replay node about where this robot's data
    ends, an error is logged (the robot holds until it answers); 0: do not ask, start at 1."""
    timing_log: str = ''
    """If set, every control tick's time is appended to this file (for benchmarks)."""
    nice: int = -5
    """Scheduling niceness of the driver process; below 0 puts the control clock ahead of
    training on a shared machine (needs CAP_SYS_NICE; without it a warning, no change)."""

    def __post_init__(self):
        super().__post_init__()
        check(self.replay_wait_s >= 0, f'replay_wait_s must be >= 0, got {self.replay_wait_s}')
        check(-20 <= self.nice <= 19, f'nice must be in -20..19, got {self.nice}')
        timestep = mujoco.MjModel.from_xml_path(self.arm.model_path).opt.timestep
        steps = 1.0 / (self.control_hz * timestep)
        check(abs(steps - round(steps)) < 1e-6 and round(steps) >= 1,
              f'control_hz {self.control_hz:g} is not a whole number of model timesteps '
              f'({timestep:g} s); pick a rate that divides {1.0 / timestep:g}, e.g. 10, 20, 25, 50')


class MujocoArmRobot(MujocoArmSim):
    """The simulated arm as the driver sees it: a robot that can hold its pose."""
    action_units = 'end-effector displacement per step, in units of arm.max_ee_step_m'
    capabilities = ('reset', 'hold', 'estop', 'cameras')

    def hold(self) -> None:
        self.data.ctrl[:] = self.data.qpos  # position actuators keep the current pose


def make_arm(cfg: MujocoArmDriverConfig) -> MujocoArmRobot:
    robot = MujocoArmRobot(dataclasses.replace(cfg.arm, control_hz=cfg.control_hz), cfg.seed)
    unknown = sorted(set(cfg.cameras) - set(robot.camera_names))
    if unknown:
        raise ValueError(f'cameras: {unknown} not in the model; it has {list(robot.camera_names)}')
    return robot


def main(args=None):
    run_driver('driver', MujocoArmDriverConfig, make_arm, kind='mujoco_arm', args=args)


if __name__ == '__main__':
    main()
