"""Settings of a Universal Robots arm driven through ur_rtde, the driver's parameters and its
registration (no ROS imports).

`ur_rtde_driver` is for arms without ros2_control. `ur.backend: real` connects to the
controller at `ur.host` when the node is configured (a controller that does not answer fails
the configure with a message naming host, port and fix; the node stays up, unconfigured).
`ur.backend: sim` runs the same driver code against a simulated controller in this process
(`sim.py`).

`URConfig` is the `ur:` section of the ur_rtde driver's parameters. The limits here are the
driver's own: they are checked on every command before it is sent, and they should be
narrower than the safety limits set on the controller (which remain the last line of
defence).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from realrl_common.config import check
from realrl_common.plugins import NodeKind, RobotKind
from realrl_driver.core.driver_config import DriverNodeConfig

BACKENDS = ('real', 'sim')
UR_ACTION_MODES = ('joint_delta', 'tcp_delta')
UR5E_HOME = (0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0)
FASTEST_UR_JOINT = math.pi
"""rad/s; no UR joint turns faster (180 deg/s)."""
UR_STATE_NAMES = ('joint_pos', 'joint_vel', 'tcp_pose')
"""The arm's state slices, 6 values each, in this order."""


@dataclass(frozen=True)
class URConfig:
    """A UR arm driven through RTDE: controller, backend, action mode, limits, home."""

    host: str = ''
    """The controller's IP address or host name (backend real), e.g. 192.168.1.10; with
    backend sim, the name of the simulated controller ('': 'sim')."""
    backend: str = 'real'
    """'real': the ur_rtde SDK talks to a controller at `host`; 'sim': the same driver code
    talks to a simulated controller (MuJoCo UR5e-like arm) in this process."""
    action_mode: str = 'joint_delta'
    """'joint_delta': 6 values, a displacement of each joint from where it is measured;
    'tcp_delta': 3 values, a displacement (x, y, z) of the TCP, orientation held."""
    max_joint_step_rad: float = 0.02
    """Joint displacement (rad) that an action value of 1 asks for, per control step."""
    max_tcp_step_m: float = 0.01
    """TCP displacement (m, per axis) that an action value of 1 asks for, per control step."""
    joint_low: tuple[float, ...] = (-math.pi, -math.pi, -math.pi, -math.pi, -math.pi, -math.pi)
    """Lowest joint positions (rad) ever commanded, base to wrist 3."""
    joint_high: tuple[float, ...] = (math.pi, 0.0, math.pi, math.pi, math.pi, math.pi)
    """Highest joint positions (rad) ever commanded, base to wrist 3."""
    max_joint_speed: float = 1.0
    """Fastest commanded joint motion (rad/s, every joint)."""
    max_joint_acceleration: float = 4.0
    """Largest change of the commanded joint velocity (rad/s^2, every joint); the range,
    the box and the TCP speed override it when they must stop a motion."""
    max_tcp_speed: float = 0.25
    """Fastest commanded TCP motion (m/s)."""
    workspace_low: tuple[float, ...] = (-0.7, -0.7, 0.05)
    """Lower corner (x, y, z in m, the controller's base frame) of the box the TCP is kept
    in: a step that leaves it and moves further away from it is shortened or dropped."""
    workspace_high: tuple[float, ...] = (0.7, 0.7, 0.9)
    """Upper corner (x, y, z in m, base frame) of the TCP box."""
    home_q: tuple[float, ...] = UR5E_HOME
    """Joint positions (rad) that reset moves to (moveJ)."""
    home_speed: float = 0.5
    """Speed (rad/s) of the reset move's leading joint."""
    home_acceleration: float = 1.0
    """Acceleration (rad/s^2) of the reset move."""
    reset_timeout_s: float = 20.0
    """The reset move must reach home within this; otherwise the arm is stopped (stopJ)
    and reset fails."""
    stop_deceleration: float = 2.0
    """Deceleration (rad/s^2) when the arm holds or stops (servoStop, stopJ)."""
    servo_lookahead_s: float = 0.1
    """servoJ lookahead time (s, 0.03..0.2): larger is smoother and lags more."""
    servo_gain: float = 300.0
    """servoJ proportional gain (100..2000): larger follows the target more stiffly."""
    settle_fraction: float = 0.5
    """After sending a step, wait this fraction of the control period before measuring the
    state it returns, so the observation shows the step's effect; the rest of the period is
    left for the policy to answer. 0 measures at once (the state then lags one step)."""
    rtde_frequency: float = -1.0
    """RTDE update rate (Hz) asked of the controller; -1: the SDK's default (500 on
    e-Series, 125 on CB3)."""
    connect_timeout_s: float = 2.0
    """Before the SDK connects, a plain TCP connection to the RTDE port must succeed within
    this (the SDK itself can wait minutes for a host that does not answer); 0 skips it."""

    def __post_init__(self):
        check(self.backend in BACKENDS, f'backend must be one of {list(BACKENDS)}, '
                                        f'got {self.backend!r}')
        check(self.backend == 'sim' or bool(self.host),
              'host is empty: set ur.host to the controller\'s IP address (e.g. 192.168.1.10), '
              'or use ur.backend: sim')
        check(self.action_mode in UR_ACTION_MODES,
              f'action_mode must be one of {list(UR_ACTION_MODES)}, got {self.action_mode!r}')
        for name in ('max_joint_step_rad', 'max_tcp_step_m', 'max_joint_acceleration',
                     'max_tcp_speed', 'home_acceleration', 'reset_timeout_s',
                     'stop_deceleration'):
            value = getattr(self, name)
            check(math.isfinite(value) and value > 0, f'{name} must be > 0, got {value}')
        for name in ('max_joint_speed', 'home_speed'):
            value = getattr(self, name)
            check(0 < value <= FASTEST_UR_JOINT,
                  f'{name} must be in (0, {FASTEST_UR_JOINT:.4f}] rad/s, got {value}')
        for name in ('joint_low', 'joint_high', 'home_q'):
            value = getattr(self, name)
            check(len(value) == 6 and all(abs(v) <= 2 * math.pi for v in value),
                  f'{name} must be 6 joint positions within +-2pi rad, got {list(value)}')
        check(all(lo < hi for lo, hi in zip(self.joint_low, self.joint_high)),
              f'joint_low {list(self.joint_low)} must be below joint_high '
              f'{list(self.joint_high)} for every joint')
        check(all(lo <= q <= hi
                  for lo, q, hi in zip(self.joint_low, self.home_q, self.joint_high)),
              f'home_q {list(self.home_q)} is outside the joint limits [{list(self.joint_low)}, '
              f'{list(self.joint_high)}]; move it inside or widen the limits')
        for name in ('workspace_low', 'workspace_high'):
            check(len(getattr(self, name)) == 3,
                  f'{name} must have 3 values (x, y, z in m), got {list(getattr(self, name))}')
        check(all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high)),
              f'workspace_low {list(self.workspace_low)} must be below workspace_high '
              f'{list(self.workspace_high)} on every axis')
        check(0.03 <= self.servo_lookahead_s <= 0.2,
              f'servo_lookahead_s must be in [0.03, 0.2] (the SDK\'s range), '
              f'got {self.servo_lookahead_s}')
        check(100 <= self.servo_gain <= 2000,
              f'servo_gain must be in [100, 2000] (the SDK\'s range), got {self.servo_gain}')
        check(0 <= self.settle_fraction < 1,
              f'settle_fraction must be in [0, 1), got {self.settle_fraction}')
        check(self.rtde_frequency == -1 or self.rtde_frequency > 0,
              f'rtde_frequency must be > 0 or -1 (the default), got {self.rtde_frequency}')
        check(self.connect_timeout_s >= 0,
              f'connect_timeout_s must be >= 0 (0: no check), got {self.connect_timeout_s}')

    @property
    def action_dim(self) -> int:
        return 6 if self.action_mode == 'joint_delta' else 3


@dataclass(frozen=True)
class URDriverConfig(DriverNodeConfig):
    """Parameters of the driver of a UR arm."""

    ur: URConfig = field(default_factory=URConfig)
    """The arm: controller host, backend (real or sim), action mode, limits, home pose."""

    def __post_init__(self):
        super().__post_init__()
        check(self.reward_source == 'node',
              f"reward_source must be 'node' for a UR arm (a reward node scores it), "
              f'got {self.reward_source!r}')
        check(not self.cameras, f'cameras: the UR driver has no cameras, '
                                f'got {list(self.cameras)}; leave cameras empty')
        check(self.control_hz <= 125,
              f'control_hz must be <= 125 for a UR arm (servoJ streaming through RTDE), '
              f'got {self.control_hz:g}')

    def state_names(self) -> tuple[str, ...]:
        """The arm's state slices (known without connecting; graphs check rewards on it)."""
        return UR_STATE_NAMES


ROBOT = RobotKind(config=URDriverConfig,
                  make_robot='realrl_driver.robots.ur_rtde.robot:make_ur_robot')
NODE = NodeKind(role='driver', config=URDriverConfig, robot='ur_rtde')
