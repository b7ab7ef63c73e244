"""The MuJoCo arm driver's parameters, and its registration (no ROS imports).

One driver for every arm of ``ARM_MODELS``: ``arm.model`` picks it (reach_arm, panda7,
ur5e6), and the robot reports that model's kind (mujoco_arm, mujoco_panda7, mujoco_ur5e6).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from realrl_common.config import check
from realrl_common.plugins import NodeKind, RobotKind
from realrl_driver.core.driver_config import DriverNodeConfig
from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig, mujoco  # sets MUJOCO_GL first


@dataclass(frozen=True)
class MujocoArmDriverConfig(DriverNodeConfig):
    """Parameters of the driver of a simulated MuJoCo arm."""

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
              f'({timestep:g} s); pick a rate that divides {1.0 / timestep:g}, '
              f'e.g. 10, 20, 25, 50')


ROBOT = RobotKind(config=MujocoArmDriverConfig,
                  make_robot='realrl_driver.robots.mujoco_arm.robot:make_arm')
NODE = NodeKind(role='driver', config=MujocoArmDriverConfig, robot='mujoco_arm')
