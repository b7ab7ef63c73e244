"""Entry point: a gymnasium environment as a realrl robot driver.

The environment's reward is carried by default (``reward_source: env``): the driver labels
each observation itself, with the environment's reward, terminated and truncated, and
publishes that label on ``reward_label`` for observers; no reward node serves the robot.
With ``reward_source: node`` a reward node labels it like any robot.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from realrl_common.config import check
from realrl_driver.driver_config import DriverNodeConfig
from realrl_driver.gym_env import GymEnvConfig, GymRobot


@dataclass(frozen=True)
class GymDriverConfig(DriverNodeConfig):
    env: GymEnvConfig = field(default_factory=GymEnvConfig)
    """The gymnasium environment (id, make kwargs, kind, success info key)."""
    reward_source: str = 'env'
    """'env': the environment's reward and episode end label each step (no reward node);
    'node': a reward node labels the observations."""
    episode_max_steps: int = 200
    """Steps before an episode is cut off (truncated), unless the environment ends it."""

    def __post_init__(self):
        super().__post_init__()
        check(all(c == 'env' for c in self.cameras),
              f"cameras: a gymnasium robot has one camera, 'env'; got {list(self.cameras)}")


def make_gym_robot(cfg: GymDriverConfig) -> GymRobot:
    return GymRobot(cfg.env, cfg.cameras, tuple(cfg.image_size))


def main(args=None):
    from realrl_driver.driver_node import run_driver  # rclpy only where a node runs
    run_driver('driver', GymDriverConfig, make_gym_robot, kind='gym', args=args)


if __name__ == '__main__':
    main()
