"""Entry point: a Universal Robots arm through the vendor's ur_rtde SDK, as a realrl driver.

For arms without ros2_control. `ur.backend: real` connects to the controller at `ur.host`
when the node is configured (a controller that does not answer fails the configure with a
message naming host, port and fix; the node stays up, unconfigured). `ur.backend: sim` runs
the same driver code against a simulated controller in this process (`ur_rtde_sim`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from realrl_common.config import check
from realrl_driver.driver_config import DriverNodeConfig
from realrl_driver.ur_rtde_config import UR_STATE_NAMES, URConfig


@dataclass(frozen=True)
class URDriverConfig(DriverNodeConfig):
    ur: URConfig = field(default_factory=URConfig)
    """The arm: controller host, backend (real or sim), action mode, limits, home pose."""

    def __post_init__(self):
        super().__post_init__()
        check(self.reward_source == 'node',
              f"reward_source must be 'node' for a UR arm (a reward node scores it), "
              f'got {self.reward_source!r}')
        check(not self.cameras, f'cameras: the UR driver has no cameras, got {list(self.cameras)}; '
                                f'leave cameras empty')
        check(self.control_hz <= 125,
              f'control_hz must be <= 125 for a UR arm (servoJ streaming through RTDE), '
              f'got {self.control_hz:g}')

    def state_names(self) -> tuple[str, ...]:
        """The arm's state slices (known without connecting; graphs check rewards on it)."""
        return UR_STATE_NAMES


def make_ur_robot(cfg: URDriverConfig):
    """Connect to the arm (or start the simulated controller first, with backend sim)."""
    from realrl_driver.ur_rtde_robot import URRtdeRobot
    if cfg.ur.backend == 'sim':
        from realrl_driver import ur_rtde_sim
        ur_rtde_sim.serve(cfg.ur.host or 'sim', cfg.ur.home_q)
    return URRtdeRobot(cfg.ur, cfg.control_hz)


def main(args=None):
    from realrl_driver.driver_node import run_driver  # rclpy only where a node runs
    run_driver('driver', URDriverConfig, make_ur_robot, kind='ur_rtde', args=args)


if __name__ == '__main__':
    main()
