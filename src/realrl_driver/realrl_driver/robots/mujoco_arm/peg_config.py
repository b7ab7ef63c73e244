"""The peg-insertion driver's parameters, and its registration (no ROS imports).

A robot kind of its own, ``mujoco_peg``: the panda7 arm of ``mujoco_arm`` with a peg in its
hand over a block with a hole (``peg_task.py``). The robot labels its own steps by default
(``reward_source: env``: reward and success from the simulation); with ``reward_source:
node`` a reward node labels them, e.g. a learned success classifier on the camera images.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from realrl_common.config import check
from realrl_common.plugins import NodeKind, RobotKind
from realrl_driver.core.driver_config import DriverNodeConfig
from realrl_driver.robots.mujoco_arm.peg_task import PegTaskConfig, mujoco


@dataclass(frozen=True)
class MujocoPegDriverConfig(DriverNodeConfig):
    """Parameters of the driver of the simulated peg-insertion arm."""

    peg: PegTaskConfig = field(default_factory=PegTaskConfig)
    """The task: hole and start randomisation, success depth, reward, step size, workspace."""
    reward_source: str = 'env'
    """'env': the simulation's reward and success label every step; 'node': a reward node
    (e.g. the success classifier, ``type: classifier``) labels the observations."""
    cameras: tuple[str, ...] = ('front', 'wrist')
    """Cameras rendered into every observation: 'front', 'wrist' or both."""
    image_size: tuple[int, ...] = (84, 84)
    """Camera frame height and width in pixels."""
    episode_max_steps: int = 60
    """Steps before an episode is cut off (the scripted expert needs 6-15)."""

    def __post_init__(self):
        super().__post_init__()
        timestep = mujoco.MjModel.from_xml_path(self.peg.model_path).opt.timestep
        steps = 1.0 / (self.control_hz * timestep)
        check(abs(steps - round(steps)) < 1e-6 and round(steps) >= 1,
              f'control_hz {self.control_hz:g} is not a whole number of model timesteps '
              f'({timestep:g} s); pick a rate that divides {1.0 / timestep:g}, e.g. 10, 20')
        check(set(self.cameras) <= {'front', 'wrist'},
              f"cameras must be among ['front', 'wrist'], got {list(self.cameras)}")

    def state_names(self) -> tuple[str, ...]:
        """The state's slices (no hole position: the policy sees the hole in images)."""
        return ('joint_pos', 'joint_vel', 'ee_pos', 'ee_force')


ROBOT = RobotKind(config=MujocoPegDriverConfig,
                  make_robot='realrl_driver.robots.mujoco_arm.peg_robot:make_peg_arm')
NODE = NodeKind(role='driver', config=MujocoPegDriverConfig, robot='mujoco_peg')
