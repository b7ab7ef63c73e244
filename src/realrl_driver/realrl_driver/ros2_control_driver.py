"""Entry point: any robot already driven by ros2_control as a realrl robot driver.

The robot's own ROS 2 driver (Franka, UR, Kinova, xArm, or mock hardware) runs its
controller manager with a joint_state_broadcaster and a forward_position_controller or
forward_velocity_controller. This driver reads /joint_states and sends each step's joint
targets (or velocities) to /<controller>/commands, inside the configured limits and rate
limits (ros2_control_robot.py). Configure fails, naming the topic or joint and the fix, until
the joint states carry every configured joint and the controller listens.

  ros2_control_driver --ros-args -r __ns:=/arm0 -p 'ros2_control.joints:=[j1, j2]' \
      -p 'ros2_control.lower_limits:=[-1.0, -1.0]' -p 'ros2_control.upper_limits:=[1.0, 1.0]'
"""
from __future__ import annotations

from dataclasses import dataclass, field

from realrl_common.config import check
from realrl_driver.driver_config import DriverNodeConfig
from realrl_driver.ros2_control_config import Ros2ControlConfig


@dataclass(frozen=True)
class Ros2ControlDriverConfig(DriverNodeConfig):
    ros2_control: Ros2ControlConfig = field(default_factory=Ros2ControlConfig)
    """The robot's joints, limits, controller and topics (no defaults: they are the robot's)."""

    def __post_init__(self):
        super().__post_init__()
        check(self.reward_source == 'node',
              f"reward_source must be 'node' for a ros2_control robot (a reward node scores "
              f"it), got {self.reward_source!r}")
        check(not self.cameras, f'cameras: a ros2_control robot has none here, got '
                                f'{list(self.cameras)}')
        self.ros2_control.check_rate(self.control_hz)

    def state_names(self) -> tuple[str, ...]:
        """The robot's state slices (known without connecting; graphs check rewards on it)."""
        return self.ros2_control.state_names()


def main(args=None):
    from realrl_driver.ros2_control_link import run_ros2_control_driver  # rclpy only here
    run_ros2_control_driver(Ros2ControlDriverConfig, args)


if __name__ == '__main__':
    main()
