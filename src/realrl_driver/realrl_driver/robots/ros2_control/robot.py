"""A robot that ros2_control already drives, as a realrl robot (no ROS imports).

The robot is reached through a *port* (``JointPort``): the latest joint states in, joint
commands out. The ROS side (``ros2_control_link``) is such a port over ``/joint_states`` and a
forward command controller's ``commands`` topic; the unit tests use a simulated one.

What this core guarantees, whatever the policy sends:

- **Limits.** A position target is always inside ``[lower_limits, upper_limits]``. A velocity
  command is cut so that the joint stays inside them for ``VELOCITY_LOOKAHEAD`` control periods
  (the link sends zero velocity if no new command comes by then).
- **Rate.** A position target is never more than ``max_step`` from the measured position, and
  a velocity is never above ``max_velocity``; ``max_step`` itself must be reachable at
  ``max_velocity`` in one period (checked when the control rate is known).
- **Fresh state.** Every command is computed from joint states younger than
  ``stale_after_s``; with older ones nothing is sent (a position hold too: a controller
  restarted meanwhile would take a stale position as its target) and ``StaleJointStates``
  is raised. Commands resume from the first fresh reading, within ``max_step`` of it.

Action: one value in [-1, 1] per joint; position interface: target = measured + a * max_step;
velocity interface: velocity = a * max_velocity. State: joint_pos, joint_vel, and the last
command (joint_target or joint_vel_cmd), so the state says what the robot was told to do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from realrl_driver.robots.ros2_control.config import Ros2ControlConfig

VELOCITY_LOOKAHEAD = 2.0
"""A velocity command is good for this many control periods (bounds and link watchdog)."""
RESET_GAIN = 0.5
"""Velocity reset: each period the joints are asked to close this share of their error."""


@dataclass
class JointReading:
    """Joint positions and velocities as last read, and how old they are."""

    position: np.ndarray
    velocity: np.ndarray
    age_s: float
    """Age of the oldest joint's newest sample."""


class JointPort(Protocol):
    """Joint states in (``read``: None until every joint was seen), commands out; ``wait``
    lets time pass and ``now`` tells it (the ROS link, or a simulation in tests)."""

    def read(self) -> JointReading | None: ...
    def write(self, command: np.ndarray) -> None: ...
    def wait(self, seconds: float) -> None: ...
    def now(self) -> float: ...


class RobotFault(RuntimeError):
    """The robot cannot be commanded safely now; it has been told to hold."""


class StaleJointStates(RobotFault):
    """No fresh joint states (the controller manager stopped, or the network)."""


class ResetTimeout(RobotFault):
    """Home was not reached in time."""


def readiness_problem(cfg: Ros2ControlConfig, seen_joints: set[str] | None,
                      state_publishers: int, command_subscribers: int,
                      other_state_topics: tuple[str, ...] = (),
                      other_command_topics: tuple[str, ...] = ()) -> str:
    """What stops the robot from being driven ('' if nothing), with the fix. ``seen_joints``
    is None when no joint state has arrived at all. ``other_*_topics``: topics of the same
    types elsewhere in the ROS graph (a controller manager in a namespace), named as the
    likely fix."""
    problems = []
    topic = cfg.joint_states_topic
    if seen_joints is None:
        problems.append(
            f'no joint states on {topic} ' + ('(nobody publishes it)' if not state_publishers
                                              else '(a publisher exists but sent nothing)') +
            ': start the robot\'s ros2_control (controller manager with a joint_state_'
            'broadcaster: ros2 control load_controller --set-state active joint_state_'
            'broadcaster) or set ros2_control.joint_states_topic' +
            (f' (JointState topics in the graph: {list(other_state_topics)})'
             if other_state_topics and not state_publishers else ''))
    else:
        missing = [j for j in cfg.joints if j not in seen_joints]
        if missing:
            problems.append(f'joints {missing} are not in {topic} (it has {sorted(seen_joints)}):'
                            f' fix ros2_control.joints')
    if command_subscribers == 0:
        problems.append(
            f'nobody subscribes to {cfg.commands_topic}: activate the controller (ros2 control '
            f'load_controller --set-state active {cfg.controller_name}) or set '
            f'ros2_control.controller / command_topic' +
            (f' (command topics in the graph: {list(other_command_topics)})'
             if other_command_topics else ''))
    return '; '.join(problems)


class Ros2ControlArm:
    """The `Robot` of a ros2_control robot; ``port`` reaches it, ``period_s`` is the control
    period. ``on_wait`` (optional) is called on every period a reset waits (a heartbeat)."""

    camera_names: tuple[str, ...] = ()

    def __init__(self, cfg: Ros2ControlConfig, port: JointPort, period_s: float):
        self.cfg, self.port, self.period = cfg, port, float(period_s)
        self.kind = cfg.kind
        self.joints = cfg.joints
        n = len(cfg.joints)
        self.lower = np.asarray(cfg.lower_limits, dtype=np.float64)
        self.upper = np.asarray(cfg.upper_limits, dtype=np.float64)
        self.max_step, self.max_velocity = cfg.per_joint('max_step'), cfg.per_joint('max_velocity')
        self.home = np.asarray(cfg.home, dtype=np.float64) if cfg.home else None
        self.velocity_mode = cfg.command_interface == 'velocity'
        self.state_dim, self.action_dim = 3 * n, n
        self.action_low, self.action_high = -np.ones(n, np.float32), np.ones(n, np.float32)
        self.observation_layout = {name: (k * n, (k + 1) * n)
                                   for k, name in enumerate(cfg.state_names())}
        self.action_units = ('joint velocity, in units of ros2_control.max_velocity'
                             if self.velocity_mode else
                             'joint position change per step, in units of ros2_control.max_step')
        self.capabilities = ('reset', 'hold', 'estop') + (('home',) if cfg.home else ())
        self.on_wait: Callable[[], None] | None = None
        self._command: np.ndarray | None = None

    # -- the Robot protocol -------------------------------------------------------------
    def apply(self, action) -> np.ndarray:
        """Command one step; non-finite values count as 0 and the rest is clipped to [-1, 1]
        (the driver's guard has already refused such actions; this is the second line)."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (self.action_dim,):
            raise ValueError(f'action must have {self.action_dim} values, got {a.size}')
        a = np.clip(np.where(np.isfinite(a), a, 0.0), -1.0, 1.0)
        reading = self._fresh()
        if self.velocity_mode:
            self._send(self._velocity_within_limits(reading.position, a * self.max_velocity))
        else:
            self._send(self._position_within_limits(reading.position,
                                                    reading.position + a * self.max_step))
        if self.cfg.settle_s > 0:
            self.port.wait(self.cfg.settle_s)
            reading = self._fresh()
        return self._state(reading)

    def hold(self) -> None:
        """Stay: zero velocity, or the measured position as target (sent only where that is
        inside the limits; otherwise the controller keeps its last target, which was).

        A position target is sent only from fresh joint states: with stale ones nothing is
        sent, because a controller started again meanwhile (the arm moved by hand, or
        restarted elsewhere) would take the last known position as a target and jump there.
        The controller then keeps its own last target (its hold)."""
        if self.velocity_mode:
            self._send(np.zeros(self.action_dim))
            return
        reading = self.port.read()
        if reading is None or reading.age_s > self.cfg.stale_after_s:
            return
        target = np.clip(reading.position, self.lower, self.upper)
        if np.all(np.abs(target - reading.position) <= self.max_step):
            self._send(target)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Go home in rate-limited steps (one per control period) until every joint is within
        reset_tolerance; ResetTimeout (after a hold) if that takes over reset_timeout_s."""
        if self.home is None:
            reading = self._fresh()
            self.hold()
            return self._state(reading)
        deadline = self.port.now() + self.cfg.reset_timeout_s
        while True:
            reading = self._fresh()
            error = self.home - reading.position
            if np.all(np.abs(error) <= self.cfg.reset_tolerance):
                if self.velocity_mode:
                    self.hold()
                return self._state(reading)
            if self.port.now() > deadline:
                self.hold()
                far = {j: (round(float(p), 4), float(h)) for j, p, h, e in
                       zip(self.joints, reading.position, self.home, error)
                       if abs(e) > self.cfg.reset_tolerance}
                raise ResetTimeout(
                    f'reset: joints did not reach home within {self.cfg.reset_timeout_s:g} s '
                    f'(joint: (at, home)) {far}; the robot holds. Check that '
                    f'{self.cfg.controller_name} is active and nothing blocks the arm, or raise '
                    f'ros2_control.reset_timeout_s / reset_tolerance')
            if self.velocity_mode:
                wanted = RESET_GAIN * error / self.period
                self._send(self._velocity_within_limits(reading.position, wanted))
            else:
                self._send(self._position_within_limits(reading.position, self.home))
            if self.on_wait is not None:
                self.on_wait()
            self.port.wait(self.period)

    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        raise ValueError(f'unknown camera {camera!r}: a ros2_control robot has no cameras')

    def close(self) -> None:
        """Hold, then let the port go (if it can be closed)."""
        self.hold()
        close = getattr(self.port, 'close', None)
        if close is not None:
            close()

    # -- health ---------------------------------------------------------------------------
    def problem(self) -> str:
        """Why the robot cannot be commanded now ('' if it can); nothing is sent."""
        reading = self.port.read()
        if reading is None:
            return f'no joint states yet on {self.cfg.joint_states_topic}'
        if reading.age_s > self.cfg.stale_after_s:
            return (f'joint states on {self.cfg.joint_states_topic} are {reading.age_s:.2f} s '
                    f'old (stale_after_s {self.cfg.stale_after_s:g}): is the robot\'s '
                    f'controller manager running? The robot holds until they are fresh')
        return ''

    def start_problem(self) -> str:
        """'' if the robot may be driven from where it is; else why not (joints outside
        the configured limits, which no command could reach within the rate limit)."""
        reading = self.port.read()
        if reading is None:
            return self.problem()
        out = {j: round(float(p), 4) for j, p, lo, hi in
               zip(self.joints, reading.position, self.lower, self.upper) if not lo <= p <= hi}
        if out:
            return (f'joints outside ros2_control limits {out}: move them inside [lower_limits, '
                    f'upper_limits] (e.g. with the teach pendant) or widen the limits')
        return ''

    # -- commands -------------------------------------------------------------------------
    def _fresh(self) -> JointReading:
        problem = self.problem()
        if problem:
            self.hold()
            raise StaleJointStates(problem)
        return self.port.read()

    def _position_within_limits(self, measured: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        """wanted, clipped to the rate limit around measured and to the joint limits."""
        low = np.maximum(self.lower, measured - self.max_step)
        high = np.minimum(self.upper, measured + self.max_step)
        if np.any(low > high):
            self.hold()
            out = [j for j, bad in zip(self.joints, low > high) if bad]
            raise RobotFault(f'joints {out} are more than max_step outside their limits; '
                             f'move them back inside by hand. The robot holds')
        return np.clip(wanted, low, high)

    def _velocity_within_limits(self, measured: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        """wanted, capped at max_velocity and so that no joint passes a limit within
        VELOCITY_LOOKAHEAD periods (a joint outside may only stop or move back)."""
        horizon = VELOCITY_LOOKAHEAD * self.period
        up = np.minimum(self.max_velocity, np.maximum((self.upper - measured) / horizon, 0.0))
        down = np.maximum(-self.max_velocity, np.minimum((self.lower - measured) / horizon, 0.0))
        return np.clip(wanted, down, up)

    def _send(self, command: np.ndarray) -> None:
        self._command = np.asarray(command, dtype=np.float64).copy()
        self.port.write(self._command)

    def _state(self, reading: JointReading) -> np.ndarray:
        if self._command is not None:
            command = self._command
        else:
            command = np.zeros(self.action_dim) if self.velocity_mode else reading.position
        return np.concatenate([reading.position, reading.velocity, command]).astype(np.float32)
