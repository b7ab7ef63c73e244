"""Entry point: a simulated MuJoCo arm as a realrl robot driver.

One entry point for every arm of ``ARM_MODELS``: ``arm.model`` picks it (reach_arm, panda7,
ur5e6), and the robot reports that model's kind (mujoco_arm, mujoco_panda7, mujoco_ur5e6).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from realrl_common.config import check
from realrl_driver.driver_config import DriverNodeConfig
from realrl_driver.driver_node import run_driver
from realrl_driver.mujoco_arm import ArmSimConfig, MujocoArmSim, mujoco  # sets MUJOCO_GL first


@dataclass(frozen=True)
class MujocoArmDriverConfig(DriverNodeConfig):
    arm: ArmSimConfig = field(default_factory=ArmSimConfig)
    """The simulated arm (model, action mode, workspace, IK); its clock is the driver's
    control_hz."""

    def __post_init__(self):
        super().__post_init__()
        check(self.reward_source == 'node',
              f"reward_source must be 'node' for a MuJoCo arm (a reward node scores reaching), "
              f'got {self.reward_source!r}')
        timestep = mujoco.MjModel.from_xml_path(self.arm.model_path).opt.timestep
        steps = 1.0 / (self.control_hz * timestep)
        check(abs(steps - round(steps)) < 1e-6 and round(steps) >= 1,
              f'control_hz {self.control_hz:g} is not a whole number of model timesteps '
              f'({timestep:g} s); pick a rate that divides {1.0 / timestep:g}, e.g. 10, 20, 25, 50')


class MujocoArmRobot(MujocoArmSim):
    """The simulated arm as the driver sees it: a robot that can hold its pose."""
    capabilities = ('reset', 'hold', 'estop', 'cameras')

    @property
    def action_units(self) -> str:
        if self.cfg.action_mode == 'joint_delta':
            return 'joint target displacement per step, in units of arm.max_joint_step_rad'
        return 'end-effector displacement per step, in units of arm.max_ee_step_m'

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
