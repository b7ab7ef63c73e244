"""The gymnasium driver's parameters, and its registration (no ROS imports).

The environment's reward is carried by default (``reward_source: env``): the driver labels
each observation itself, with the environment's reward, terminated and truncated, and
publishes that label on ``reward_label`` for observers; no reward node serves the robot.
With ``reward_source: node`` a reward node labels it like any robot.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from realrl_common.plugins import NodeKind, RobotKind
from realrl_driver.core.driver_config import DriverNodeConfig
from realrl_driver.robots.gym.robot import GymEnvConfig


@dataclass(frozen=True)
class GymDriverConfig(DriverNodeConfig):
    """Parameters of the driver of a gymnasium environment."""

    env: GymEnvConfig = field(default_factory=GymEnvConfig)
    """The gymnasium environment (id, make kwargs, kind, success info key)."""
    reward_source: str = 'env'
    """'env': the environment's reward and episode end label each step (no reward node);
    'node': a reward node labels the observations."""
    episode_max_steps: int = 200
    """Steps before an episode is cut off (truncated), unless the environment ends it."""
    # `cameras`: 'env' (the environment's rendering) or image entries of a Dict observation
    # space, by key; the robot checks them against the environment's spaces when it is made.


ROBOT = RobotKind(config=GymDriverConfig,
                  make_robot='realrl_driver.robots.gym.robot:make_gym_robot')
NODE = NodeKind(role='driver', config=GymDriverConfig, robot='gym')
