"""Settings of a robot driven by ros2_control (no ROS imports): its joints, limits, rate
limits, controller and topics, home pose and timeouts (see robot.py for what they
guarantee); the ros2_control driver's parameters and its registration.

The robot's own ROS 2 driver (Franka, UR, Kinova, xArm, or mock hardware) runs its
controller manager with a joint_state_broadcaster and a forward_position_controller or
forward_velocity_controller. ``ros2_control_driver`` reads /joint_states and sends each
step's joint targets (or velocities) to /<controller>/commands, inside the configured limits
and rate limits. Configure fails, naming the topic or joint and the fix, until the joint
states carry every configured joint and the controller listens.

  ros2_control_driver --ros-args -r __ns:=/arm0 -p 'ros2_control.joints:=[j1, j2]' \
      -p 'ros2_control.lower_limits:=[-1.0, -1.0]' -p 'ros2_control.upper_limits:=[1.0, 1.0]'
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from realrl_common.config import check
from realrl_common.plugins import NodeKind, RobotKind
from realrl_driver.core.driver_config import DriverNodeConfig

COMMAND_INTERFACES = ('position', 'velocity')
DEFAULT_CONTROLLERS = {'position': 'forward_position_controller',
                       'velocity': 'forward_velocity_controller'}
_ROS_NAME = re.compile(r'^[A-Za-z_~/][A-Za-z0-9_/]*$')


@dataclass(frozen=True)
class Ros2ControlConfig:
    """A ros2_control robot: joints, limits, controller and topics."""

    joints: tuple[str, ...] = ()
    """Joint names as ros2_control knows them, in command order (the controller's `joints`)."""
    lower_limits: tuple[float, ...] = ()
    """Lowest position commanded per joint (rad or m); keep it inside the hardware's limits."""
    upper_limits: tuple[float, ...] = ()
    """Highest position commanded per joint."""
    command_interface: str = 'position'
    """'position' (forward_position_controller) or 'velocity' (forward_velocity_controller)."""
    controller: str = ''
    """Name of the forward command controller ('': the default one of command_interface)."""
    command_topic: str = ''
    """Float64MultiArray commands topic ('': /<controller>/commands); relative names resolve in
    the robot's namespace."""
    joint_states_topic: str = '/joint_states'
    """sensor_msgs/JointState topic of the joint_state_broadcaster."""
    max_step: tuple[float, ...] = (0.05,)
    """Largest position change per control period (one value, or one per joint)."""
    max_velocity: tuple[float, ...] = (1.0,)
    """Largest joint speed per second (one value, or one per joint); the velocity action scale."""
    home: tuple[float, ...] = ()
    """Pose every episode starts from, reached in rate-limited steps ([]: start where it is)."""
    reset_tolerance: float = 0.01
    """Reset is done when every joint is this close to home."""
    reset_timeout_s: float = 10.0
    """Reset gives up (the robot holds, an error names the joints) after this long."""
    stale_after_s: float = 0.25
    """Joint states older than this stop the robot (hold) until fresh ones arrive."""
    connect_timeout_s: float = 5.0
    """Configure waits this long for joint states and the controller's subscription."""
    settle_s: float = 0.0
    """After a command, wait this long before reading the state it reached (0: read at once;
    must be shorter than a control period)."""
    kind: str = 'ros2_control_arm'
    """Robot kind reported in the description (robots of one kind share a layout)."""

    def __post_init__(self):
        n = len(self.joints)
        check(n > 0, 'ros2_control.joints must list the joint names in command order, e.g. '
                     '[joint1, joint2]')
        check(all(isinstance(j, str) and j for j in self.joints) and len(set(self.joints)) == n,
              f'ros2_control.joints must be distinct non-empty names, got {list(self.joints)}')
        for name in ('lower_limits', 'upper_limits'):
            values = getattr(self, name)
            check(len(values) == n and all(math.isfinite(v) for v in values),
                  f'ros2_control.{name} must have one finite value per joint ({n}), got '
                  f'{list(values)}')
        bad = [j for j, lo, hi in zip(self.joints, self.lower_limits, self.upper_limits)
               if not lo < hi]
        check(not bad, f'ros2_control.lower_limits must be below upper_limits; not for {bad}')
        for name in ('max_step', 'max_velocity'):
            values = getattr(self, name)
            check(len(values) in (1, n) and all(math.isfinite(v) and v > 0 for v in values),
                  f'ros2_control.{name} must be one value > 0 or one per joint ({n}), got '
                  f'{list(values)}')
        if self.home:
            check(len(self.home) == n, f'ros2_control.home must have one value per joint ({n}) '
                                       f'or be [], got {list(self.home)}')
            out = [j for j, h, lo, hi in zip(self.joints, self.home, self.lower_limits,
                                             self.upper_limits) if not lo <= h <= hi]
            check(not out, f'ros2_control.home is outside the limits for joints {out}; move '
                           f'home inside [lower_limits, upper_limits]')
        check(self.command_interface in COMMAND_INTERFACES,
              f'ros2_control.command_interface must be one of {list(COMMAND_INTERFACES)}, got '
              f'{self.command_interface!r}')
        for name in ('controller', 'command_topic', 'joint_states_topic'):
            value = getattr(self, name)
            check(value == '' and name != 'joint_states_topic' or bool(_ROS_NAME.match(value)),
                  f'ros2_control.{name} must be a ROS name, got {value!r}')
        for name in ('reset_tolerance', 'reset_timeout_s', 'stale_after_s', 'connect_timeout_s'):
            value = getattr(self, name)
            check(value > 0, f'ros2_control.{name} must be > 0, got {value}')
        check(self.settle_s >= 0, f'ros2_control.settle_s must be >= 0, got {self.settle_s}')
        check(bool(re.fullmatch(r'[A-Za-z][A-Za-z0-9_]*', self.kind)),
              f'ros2_control.kind must be a name of letters, digits and _, got {self.kind!r}')

    def state_names(self) -> tuple[str, ...]:
        """Names of the robot's state slices, in order: joint positions, velocities and the
        last command (joint_target, or joint_vel_cmd in velocity mode)."""
        command = 'joint_vel_cmd' if self.command_interface == 'velocity' else 'joint_target'
        return ('joint_pos', 'joint_vel', command)

    @property
    def controller_name(self) -> str:
        return self.controller or DEFAULT_CONTROLLERS[self.command_interface]

    @property
    def commands_topic(self) -> str:
        return self.command_topic or f'/{self.controller_name}/commands'

    def per_joint(self, name: str) -> np.ndarray:
        values = np.asarray(getattr(self, name), dtype=np.float64)
        return np.broadcast_to(values, (len(self.joints),)).copy()

    def check_rate(self, control_hz: float) -> None:
        """ConfigError unless the settings fit a clock of control_hz."""
        period = 1.0 / control_hz
        step, vmax = self.per_joint('max_step'), self.per_joint('max_velocity')
        fast = [j for j, s, v in zip(self.joints, step, vmax) if s > v * period * (1 + 1e-9)]
        check(not fast, f'ros2_control.max_step is more than max_velocity allows in one period '
                        f'at {control_hz:g} Hz for joints {fast}; lower max_step to at most '
                        f'max_velocity / control_hz or raise max_velocity')
        check(self.settle_s < period, f'ros2_control.settle_s ({self.settle_s:g}) must be '
                                      f'shorter than a control period ({period:g} s)')
        check(self.stale_after_s >= period, f'ros2_control.stale_after_s ({self.stale_after_s:g})'
                                            f' must be at least one control period ({period:g} s)')


@dataclass(frozen=True)
class Ros2ControlDriverConfig(DriverNodeConfig):
    """Parameters of the driver of a ros2_control robot."""

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


ROBOT = RobotKind(config=Ros2ControlDriverConfig,
                  make_robot='realrl_driver.robots.ros2_control.link:make_ros2_control_robot')
NODE = NodeKind(role='driver', config=Ros2ControlDriverConfig, robot='ros2_control')
