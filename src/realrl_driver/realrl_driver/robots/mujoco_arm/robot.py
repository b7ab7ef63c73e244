"""The simulated MuJoCo arm as a realrl robot, and the ``mujoco_arm_driver`` entry point."""
from __future__ import annotations

import dataclasses

from realrl_driver.robots.mujoco_arm.config import MujocoArmDriverConfig
from realrl_driver.robots.mujoco_arm.sim import MujocoArmSim


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
    """The simulated arm of cfg at the driver's control rate; ValueError if cfg asks
    for cameras the model does not have."""
    robot = MujocoArmRobot(dataclasses.replace(cfg.arm, control_hz=cfg.control_hz), cfg.seed)
    unknown = sorted(set(cfg.cameras) - set(robot.camera_names))
    if unknown:
        raise ValueError(f'cameras: {unknown} not in the model; it has {list(robot.camera_names)}')
    return robot


def main(args=None):
    """Runs the driver node of a MuJoCo arm."""
    from realrl_driver.core.driver_node import run_robot  # rclpy only where a node runs
    run_robot('mujoco_arm', args)


if __name__ == '__main__':
    main()
