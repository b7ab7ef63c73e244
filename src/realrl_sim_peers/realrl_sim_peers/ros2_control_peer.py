"""A stand-in for a robot under ros2_control with mock hardware: the peer the
ros2_control driver is tested against, and a way to try that driver without a robot.

It shows the ROS graph that ros2_control shows with ``mock_components/GenericSystem``:

  /controller_manager                 the update loop (``update_rate`` Hz) over the hardware
  /joint_state_broadcaster            publishes sensor_msgs/JointState on /joint_states
  /forward_position_controller        subscribes std_msgs/Float64MultiArray on ~/commands
  /forward_velocity_controller        (the one of ``command_interface``)

Like the forward command controllers, a command with the wrong number of values is ignored.
The hardware follows position targets (with a first-order lag ``lag_s``) or integrates
velocities, and stops at its limits. Every command that would take a joint outside
``lower_limits``/``upper_limits`` (or is faster than ``max_velocity``, or a position target
more than ``max_jump`` from the joints) is counted and logged, and so is every command that
arrives before this peer published its first joint state (``before_states``: it was computed
from another controller's states, e.g. before a restart):
the report (std_msgs/String, JSON, latched on /controller_manager/mock_report, and printed
when the process ends) lets a test prove that a driver never sent one.

  ros2_control_peer --ros-args -p joints:="[j1, j2]" -p lower_limits:="[-1.0, -1.0]" \
      -p upper_limits:="[1.0, 1.0]"
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from realrl_common.config import check
from realrl_common.plugins import NodeKind
from realrl_driver.robots.ros2_control.config import COMMAND_INTERFACES, DEFAULT_CONTROLLERS


@dataclass(frozen=True)
class MockRobotConfig:
    """The mock hardware behind the simulated controller manager."""

    joints: tuple[str, ...] = ('joint1', 'joint2', 'joint3')
    """Joint names of the mock hardware (and of /joint_states)."""
    lower_limits: tuple[float, ...] = (-1.0, -1.0, -1.0)
    """Hardware position limits; commands beyond them are counted as violations."""
    upper_limits: tuple[float, ...] = (1.0, 1.0, 1.0)
    initial_positions: tuple[float, ...] = ()
    """Start pose ([]: zeros)."""
    command_interface: str = 'position'
    """Which forward command controller runs: 'position' or 'velocity'."""
    lag_s: float = 0.0
    """Time constant of the position servo (0: the joint jumps to each target)."""
    max_velocity: float = 0.0
    """A velocity command above this counts as a violation (0: not checked)."""
    max_jump: float = 0.0
    """A position target farther than this from where a joint is counts as a violation, a
    jump (0: not checked)."""
    update_rate: float = 100.0
    """Hz of the update loop and of /joint_states."""
    states_delay_s: float = 0.0
    """/joint_states starts this long after the controller listens (as when the
    joint_state_broadcaster is spawned after the command controller)."""
    report_period_s: float = 0.5

    def __post_init__(self):
        n = len(self.joints)
        check(n > 0 and len(set(self.joints)) == n, f'joints must be distinct names, got '
                                                    f'{list(self.joints)}')
        for name in ('lower_limits', 'upper_limits') + (('initial_positions',)
                                                        if self.initial_positions else ()):
            check(len(getattr(self, name)) == n, f'{name} needs one value per joint ({n})')
        check(all(lo < hi for lo, hi in zip(self.lower_limits, self.upper_limits)),
              'lower_limits must be below upper_limits')
        check(self.command_interface in COMMAND_INTERFACES,
              f'command_interface must be one of {list(COMMAND_INTERFACES)}')
        check(self.lag_s >= 0 and self.max_velocity >= 0 and self.max_jump >= 0
              and self.states_delay_s >= 0 and self.update_rate > 0
              and self.report_period_s > 0,
              'lag_s, max_velocity, max_jump, states_delay_s >= 0; update_rate, '
              'report_period_s > 0')


NODE = NodeKind(role='peer', config=MockRobotConfig)


class MockJointHardware:
    """The joints (no ROS): commands in, positions and velocities out, violations counted."""

    def __init__(self, cfg: MockRobotConfig):
        self.cfg = cfg
        n = len(cfg.joints)
        self.lower = np.asarray(cfg.lower_limits, dtype=np.float64)
        self.upper = np.asarray(cfg.upper_limits, dtype=np.float64)
        self.position = (np.asarray(cfg.initial_positions, dtype=np.float64)
                         if cfg.initial_positions else np.zeros(n))
        self.velocity = np.zeros(n)
        self.velocity_mode = cfg.command_interface == 'velocity'
        self.target = np.zeros(n) if self.velocity_mode else self.position.copy()
        self.counters: Counter = Counter()
        self.last_command: list[float] = []
        self.violations: list[str] = []
        """The first few violations, described."""

    def command(self, values) -> str:
        """Take a command; returns '' or what was wrong with it (it is counted)."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        self.counters['commands'] += 1
        if values.size != self.target.size:
            self.counters['wrong_length'] += 1
            return f'{values.size} values for {self.target.size} joints: ignored'
        self.last_command = values.tolist()
        problem = ''
        if not np.all(np.isfinite(values)):
            self.counters['non_finite'] += 1
            problem = f'non-finite command {values.tolist()}'
        elif self.velocity_mode:
            reach = self.position + values / self.cfg.update_rate
            fast = self.cfg.max_velocity > 0 and np.any(np.abs(values) > self.cfg.max_velocity)
            if fast:
                self.counters['too_fast'] += 1
                problem = f'velocity {values.tolist()} above max_velocity'
            if np.any((reach > self.upper) & (values > 0)) or \
                    np.any((reach < self.lower) & (values < 0)):
                self.counters['out_of_limits'] += 1
                problem = f'velocity {values.tolist()} drives a joint past its limit'
        elif np.any(values > self.upper) or np.any(values < self.lower):
            self.counters['out_of_limits'] += 1
            problem = f'target {values.tolist()} outside the limits'
        elif self.cfg.max_jump > 0 and np.any(np.abs(values - self.position) > self.cfg.max_jump):
            self.counters['jumps'] += 1
            problem = (f'target {values.tolist()} is more than max_jump from the joints at '
                       f'{self.position.round(4).tolist()}')
        if problem:
            if len(self.violations) < 20:
                self.violations.append(problem)
            return problem
        self.target = values
        return ''

    def step(self, dt: float) -> None:
        before = self.position.copy()
        if self.velocity_mode:
            self.position = self.position + self.target * dt
        elif self.cfg.lag_s > 0:
            self.position = self.position + (self.target - self.position) * (
                1.0 - math.exp(-dt / self.cfg.lag_s))
        else:
            self.position = self.target.copy()
        self.position = np.clip(self.position, self.lower, self.upper)  # hard stops
        self.velocity = (self.position - before) / dt

    def report(self) -> dict:
        return {'commands': self.counters['commands'],
                'out_of_limits': self.counters['out_of_limits'],
                'too_fast': self.counters['too_fast'],
                'non_finite': self.counters['non_finite'],
                'wrong_length': self.counters['wrong_length'],
                'jumps': self.counters['jumps'],
                'before_states': self.counters['before_states'],
                'last_command': self.last_command, 'position': self.position.tolist(),
                'violations': self.violations}


def build_nodes(node):
    """Give the configured /controller_manager node its broadcaster and controller nodes;
    returns (hardware, [extra nodes])."""
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray, String

    from realrl_common.ros_params import read_config

    cfg = read_config(node, MockRobotConfig)
    hw = MockJointHardware(cfg)
    ns = node.get_namespace()
    # Own names, not the process's remaps: a graph renames the manager node only.
    broadcaster = rclpy.create_node('joint_state_broadcaster', namespace=ns,
                                    use_global_arguments=False)
    controller = rclpy.create_node(DEFAULT_CONTROLLERS[cfg.command_interface], namespace=ns,
                                   use_global_arguments=False)
    states = broadcaster.create_publisher(JointState, 'joint_states', 10)
    report_qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    reports = node.create_publisher(String, '~/mock_report', report_qos)
    log = node.get_logger()

    def on_command(msg):
        if not hw.counters['states_published']:
            hw.counters['before_states'] += 1  # computed from someone else's joint states
        problem = hw.command(msg.data)
        n = sum(hw.counters[k] for k in ('out_of_limits', 'too_fast', 'non_finite', 'jumps'))
        if problem and (n <= 10 or n % 100 == 0):
            log.error(f'limit violation #{n}: {problem}')
        elif problem:
            log.warning(problem)

    controller.create_subscription(Float64MultiArray, '~/commands', on_command, 10)
    dt = 1.0 / cfg.update_rate
    states_from = time.monotonic() + cfg.states_delay_s

    def update():
        hw.step(dt)
        if time.monotonic() < states_from:
            return
        msg = JointState(name=list(cfg.joints), position=hw.position.tolist(),
                         velocity=hw.velocity.tolist())
        msg.header.stamp = node.get_clock().now().to_msg()
        states.publish(msg)
        hw.counters['states_published'] += 1

    node.create_timer(dt, update)
    node.create_timer(cfg.report_period_s,
                      lambda: reports.publish(String(data=json.dumps(hw.report()))))
    log.info(f'mock ros2_control robot: joints {list(cfg.joints)}, '
             f'{controller.get_name()} on {controller.get_fully_qualified_name()}/commands')
    return hw, [broadcaster, controller]


def main(args=None):
    """Runs the mock controller manager until shut down."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from realrl_common.config import ConfigError
    from realrl_common.node_main import stopped_by_shutdown

    rclpy.init(args=args)
    node = rclpy.create_node('controller_manager',
                             automatically_declare_parameters_from_overrides=True)
    try:
        hw, extra = build_nodes(node)
    except ConfigError as e:
        print(f'ros2_control_peer: bad configuration: {e}', flush=True)
        rclpy.try_shutdown()
        raise SystemExit(2)
    executor = SingleThreadedExecutor()
    for n in [node] + extra:
        executor.add_node(n)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError as e:  # RCLError: a take cut short by the signal's shutdown is a stop
        if not stopped_by_shutdown(e):
            raise
    finally:
        print('mock report: ' + json.dumps(hw.report()), flush=True)
        for n in extra + [node]:
            n.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
