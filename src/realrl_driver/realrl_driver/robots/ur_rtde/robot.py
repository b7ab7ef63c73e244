"""A Universal Robots arm as a realrl robot, through the vendor's ur_rtde SDK (no ROS imports).

Every step starts from the measured state: an action in [-1, 1] becomes a joint goal (joint
deltas, or a TCP displacement solved to joints by the controller's inverse kinematics), and
the goal is then limited, in this order, by the joint speed and acceleration limits, the
joint range, and, through the controller's forward kinematics, the TCP speed and the
workspace box. Only then is it streamed with servoJ; a step the limits cannot make safe is
not sent at all (the arm settles at its last target). Non-finite actions raise before
anything is sent. `hold` leaves servo mode (servoStop); `reset` moves home with moveJ and
waits a bounded time. Before every command the robot and safety modes are read, and a
protective stop, an emergency stop, a powered-off arm or a stopped control script raises
`URFault` naming the arm and what to do.

The SDK is the real one (`rtde_control`, `rtde_receive`) or, with `ur.backend: sim`, the
simulated controller in `sim.py`, which has the same classes and methods.
"""
from __future__ import annotations

import logging
import socket
import time
import types
from collections import Counter

import numpy as np

from realrl_driver.core.safety import checked_action
from realrl_driver.robots.ur_rtde.config import UR_STATE_NAMES, URConfig

log = logging.getLogger(__name__)

RTDE_PORT = 30004
ROBOT_MODES = {-1: 'NO_CONTROLLER', 0: 'DISCONNECTED', 1: 'CONFIRM_SAFETY', 2: 'BOOTING',
               3: 'POWER_OFF', 4: 'POWER_ON', 5: 'IDLE', 6: 'BACKDRIVE', 7: 'RUNNING',
               8: 'UPDATING_FIRMWARE'}
SAFETY_MODES = {1: 'NORMAL', 2: 'REDUCED', 3: 'PROTECTIVE_STOP', 4: 'RECOVERY',
                5: 'SAFEGUARD_STOP', 6: 'SYSTEM_EMERGENCY_STOP', 7: 'ROBOT_EMERGENCY_STOP',
                8: 'VIOLATION', 9: 'FAULT', 10: 'VALIDATE_JOINT_ID', 11: 'UNDEFINED',
                12: 'AUTOMATIC_MODE_SAFEGUARD_STOP', 13: 'SYSTEM_THREE_POSITION_ENABLING_STOP'}
MAX_IK_JUMP_RAD = 0.5
"""An inverse-kinematics answer further than this from the measured joints (another
branch of the arm's solutions) is not followed."""
SHRINK_TRIES = 5


class URConnectionError(RuntimeError):
    """No usable controller at the configured host."""


class URFault(RuntimeError):
    """The arm cannot move now (protective stop, emergency stop, power, control script)."""


def load_sdk(backend: str):
    """The modules that provide RTDEControlInterface and RTDEReceiveInterface."""
    if backend == 'sim':
        from realrl_driver.robots.ur_rtde import sim as ur_rtde_sim
        return ur_rtde_sim
    try:
        import rtde_control
        import rtde_receive
    except ImportError as e:
        raise URConnectionError(f'the ur_rtde SDK is not installed ({e}): pip install '
                                f'ur-rtde==1.6.5, or use ur.backend: sim') from None
    return types.SimpleNamespace(RTDEControlInterface=rtde_control.RTDEControlInterface,
                                 RTDEReceiveInterface=rtde_receive.RTDEReceiveInterface)


def no_controller(host: str, why: str) -> URConnectionError:
    """The error for a controller at host that cannot be reached, saying what to check."""
    return URConnectionError(
        f'no UR controller at {host} (RTDE port {RTDE_PORT}): {why}. Check the cable and '
        f'the IP address, that the arm is powered on and in remote control (teach pendant), '
        f'or use ur.backend: sim')


def _scale_into(v: np.ndarray, bound: float) -> np.ndarray:
    """V scaled down uniformly (direction kept) so that no component exceeds bound."""
    biggest = float(np.max(np.abs(v))) if v.size else 0.0
    return v * (bound / biggest) if biggest > bound else v


def _box_distance(p, low, high) -> float:
    return float(np.linalg.norm(p - np.clip(p, low, high)))


def arm_fault(recv, ctrl, host: str) -> str:
    """What keeps the arm from taking commands, with the fix ('' when nothing does), read
    from an RTDEReceiveInterface (and an RTDEControlInterface, if there is one yet)."""
    if not recv.isConnected() or (ctrl is not None and not ctrl.isConnected()):
        return (f'lost the connection to the UR controller at {host} (RTDE port {RTDE_PORT}); '
                f'check the cable, then restart the driver')
    safety = int(recv.getSafetyMode())
    name = SAFETY_MODES.get(safety, str(safety))
    if recv.isEmergencyStopped():
        return (f'UR arm at {host}: emergency stop ({name}); release the e-stop button, power '
                f'the arm on, then restart the driver')
    if recv.isProtectiveStopped():
        return (f'UR arm at {host}: protective stop (safety mode {safety} {name}); remove the '
                f'cause, unlock it on the teach pendant, then restart the driver')
    if safety not in (1, 2):
        return (f'UR arm at {host}: safety mode {safety} {name}; clear it on the teach pendant, '
                f'then restart the driver')
    mode = int(recv.getRobotMode())
    if mode != 7:
        return (f'UR arm at {host}: robot mode {mode} {ROBOT_MODES.get(mode, "?")}, not RUNNING; '
                f'power it on and release the brakes on the teach pendant')
    if ctrl is not None and not ctrl.isProgramRunning():
        return (f'UR arm at {host}: the ur_rtde control script is not running (the controller '
                f'or the pendant stopped it); restart the driver')
    return ''


class URRtdeRobot:
    """A UR arm behind ur_rtde, driven at `control_hz` by servoJ streaming."""

    kind = 'ur_rtde'
    capabilities = ('reset', 'hold', 'estop')

    def __init__(self, cfg: URConfig, control_hz: float, sdk=None):
        self.cfg = cfg
        self.dt = 1.0 / control_hz
        self.host = cfg.host or 'sim'
        self.action_dim = cfg.action_dim
        self.action_low = -np.ones(self.action_dim, dtype=np.float32)
        self.action_high = np.ones(self.action_dim, dtype=np.float32)
        self.observation_layout = {name: (6 * k, 6 * k + 6)
                                   for k, name in enumerate(UR_STATE_NAMES)}
        self.state_dim = 18
        self.action_units = ('joint displacement per step, in units of ur.max_joint_step_rad'
                             if cfg.action_mode == 'joint_delta' else
                             'TCP displacement (x, y, z) per step, in units of ur.max_tcp_step_m')
        self._q_low, self._q_high = np.array(cfg.joint_low), np.array(cfg.joint_high)
        self._box_low, self._box_high = np.array(cfg.workspace_low), np.array(cfg.workspace_high)
        self._v_prev = np.zeros(6)
        self.counters: Counter = Counter()
        self.warnings: dict[str, str] = {}
        """The newest message per reason of a step not sent (counted in ``counters``); the
        driver node logs them, throttled (this core only counts)."""
        self.recv = self.ctrl = None
        self._connect(sdk or load_sdk(cfg.backend))
        self._tool_rotvec = self._measure()[2][3:]

    # -- connection and modes -----------------------------------------------------------
    def _connect(self, sdk) -> None:
        cfg, host = self.cfg, self.host
        if cfg.backend == 'real' and cfg.connect_timeout_s > 0:
            try:
                socket.create_connection((host, RTDE_PORT), timeout=cfg.connect_timeout_s).close()
            except TimeoutError:
                raise no_controller(
                    host, f'no answer within {cfg.connect_timeout_s:g} s') from None
            except OSError as e:
                raise no_controller(host, e.strerror or str(e)) from None
        try:
            self.recv = sdk.RTDEReceiveInterface(host, cfg.rtde_frequency)
        except RuntimeError as e:
            raise no_controller(host, f'ur_rtde: {e}') from None
        fault = arm_fault(self.recv, None, host)  # named before the control script starts
        if fault:
            self.recv.disconnect()
            raise URFault(fault)
        try:
            self.ctrl = sdk.RTDEControlInterface(host, cfg.rtde_frequency)
        except RuntimeError as e:
            self.recv.disconnect()
            raise URConnectionError(
                f'the UR controller at {host} answers on RTDE port {RTDE_PORT}, but ur_rtde could '
                f'not start its control script ({e}); put the arm in remote control on the teach '
                f'pendant and check that ports 30003 and 29999 are reachable') from None
        q = self._measure()[0]
        outside = (q < self._q_low - 0.01) | (q > self._q_high + 0.01)
        if outside.any():
            self.close()
            raise URFault(f'UR arm at {host}: joints {np.flatnonzero(outside).tolist()} at '
                          f'{q.round(3).tolist()} are outside ur.joint_low/joint_high; move the '
                          f'arm inside with the teach pendant, or widen the limits')

    def check_ready(self) -> None:
        """URFault unless the arm can take commands, naming what is wrong and the fix."""
        fault = arm_fault(self.recv, self.ctrl, self.host)
        if fault:
            raise URFault(fault)

    # -- state --------------------------------------------------------------------------
    def _measure(self):
        q, qd = np.array(self.recv.getActualQ()), np.array(self.recv.getActualQd())
        tcp = np.array(self.recv.getActualTCPPose())
        if q.shape != (6,) or qd.shape != (6,) or tcp.shape != (6,):
            raise URFault(f'UR arm at {self.host}: incomplete state from RTDE (q {q.tolist()}, '
                          f'qd {qd.tolist()}, tcp {tcp.tolist()}); restart the driver')
        return q, qd, tcp

    def observe(self) -> np.ndarray:
        return np.concatenate(self._measure()).astype(np.float32)

    # -- the Robot protocol -------------------------------------------------------------
    def apply(self, action: np.ndarray) -> np.ndarray:
        a = checked_action(action, self.action_dim)
        a = np.clip(a, -1.0, 1.0)
        self.check_ready()
        q, _, tcp = self._measure()
        goal = self._goal(a, q, tcp)
        command = None if goal is None else self.limit(q, tcp, goal)
        if command is None:
            self._v_prev[:] = 0.0
            self.counters['steps_not_sent'] += 1
        else:
            self._v_prev = (command - q) / self.dt
            sent = self.ctrl.servoJ([float(v) for v in command], 0.0, 0.0, self.dt,
                                    self.cfg.servo_lookahead_s, self.cfg.servo_gain)
            if not sent:
                self.check_ready()
                raise URFault(f'UR arm at {self.host}: the controller refused servoJ; '
                              f'restart the driver')
        if self.cfg.settle_fraction > 0:
            time.sleep(self.cfg.settle_fraction * self.dt)
        return self.observe()

    def _goal(self, a: np.ndarray, q: np.ndarray, tcp: np.ndarray) -> np.ndarray | None:
        if self.cfg.action_mode == 'joint_delta':
            return q + a * self.cfg.max_joint_step_rad
        # The goal is kept in the box: the TCP slides along its walls, and comes back in.
        p = np.clip(tcp[:3] + a * self.cfg.max_tcp_step_m, self._box_low, self._box_high)
        solution = np.array(self.ctrl.getInverseKinematics(
            [float(v) for v in (*p, *self._tool_rotvec)], [float(v) for v in q]))
        if solution.shape != (6,) or not np.all(np.isfinite(solution)):
            self._warn('ik_failed',
                       f'no inverse kinematics solution for TCP {p.round(4).tolist()}')
            return None
        if np.max(np.abs(solution - q)) > MAX_IK_JUMP_RAD:
            self._warn('ik_jump', f'inverse kinematics jumped to another branch '
                                  f'({solution.round(3).tolist()} from {q.round(3).tolist()})')
            return None
        return solution

    def limit(self, q: np.ndarray, tcp: np.ndarray, goal: np.ndarray) -> np.ndarray | None:
        """The joint target to send for `goal`, inside every limit, or None."""
        cfg, dt = self.cfg, self.dt
        step = _scale_into(goal - q, cfg.max_joint_speed * dt)
        dv = _scale_into(step / dt - self._v_prev, cfg.max_joint_acceleration * dt)
        step = (self._v_prev + dv) * dt
        target = np.clip(q + step, self._q_low, self._q_high)
        reach = cfg.max_tcp_speed * dt
        start_out = _box_distance(tcp[:3], self._box_low, self._box_high)
        for _ in range(SHRINK_TRIES):
            p = np.array(self.ctrl.getForwardKinematics([float(v) for v in target]))[:3]
            if p.shape != (3,) or not np.all(np.isfinite(p)):
                return None
            moved = float(np.linalg.norm(p - tcp[:3]))
            if moved > reach:
                target = q + (target - q) * (0.95 * reach / moved)
            elif _box_distance(p, self._box_low, self._box_high) > start_out + 1e-9:
                target = q + (target - q) * 0.5
            else:
                return target
        self.counters['steps_limited_out'] += 1
        return None

    def hold(self) -> None:
        """Leave servo mode and stop where the arm is; never raises (it runs on the way out)."""
        self._v_prev[:] = 0.0
        try:
            if self.ctrl is not None and self.ctrl.isConnected():
                self.ctrl.servoStop(self.cfg.stop_deceleration)
        except RuntimeError as e:
            log.error('UR arm at %s: servoStop failed: %s', self.host, e)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Move home (moveJ) and wait at most reset_timeout_s; the seed is not used."""
        cfg = self.cfg
        self.check_ready()
        self.ctrl.servoStop(cfg.stop_deceleration)
        home = np.array(cfg.home_q)
        if not self.ctrl.moveJ([float(v) for v in home], cfg.home_speed, cfg.home_acceleration,
                               True):
            self.check_ready()
            raise URFault(f'UR arm at {self.host}: the controller refused moveJ to home_q')
        deadline = time.monotonic() + cfg.reset_timeout_s
        while True:
            q, qd, tcp = self._measure()
            if np.max(np.abs(q - home)) < 2e-3 and np.max(np.abs(qd)) < 1e-2:
                break
            if time.monotonic() > deadline:
                self.ctrl.stopJ(cfg.stop_deceleration, False)
                self.check_ready()
                raise URFault(f'UR arm at {self.host}: reset did not reach home_q within '
                              f'{cfg.reset_timeout_s:g} s (at {q.round(3).tolist()}); the arm was '
                              f'stopped; check for obstacles or raise ur.reset_timeout_s')
            time.sleep(0.01)
        self._v_prev[:] = 0.0
        self._tool_rotvec = tcp[3:]
        return self.observe()

    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        raise ValueError(f'the UR robot has no camera {camera!r}; leave cameras empty')

    def close(self) -> None:
        """Stop and disconnect (the control script ends on the controller)."""
        self.hold()
        for iface in (self.ctrl, self.recv):
            if iface is not None:
                iface.disconnect()

    def _warn(self, reason: str, message: str) -> None:
        self.counters[reason] += 1
        self.warnings[reason] = f'UR arm at {self.host}: {message}; the step was not sent'


def make_ur_robot(cfg):
    """Connect to the arm of a URDriverConfig (or start the simulated controller first, with
    backend sim)."""
    if cfg.ur.backend == 'sim':
        from realrl_driver.robots.ur_rtde import sim as ur_rtde_sim
        ur_rtde_sim.serve(cfg.ur.host or 'sim', cfg.ur.home_q)
    return URRtdeRobot(cfg.ur, cfg.control_hz)


def main(args=None):
    """The ``ur_rtde_driver`` entry point."""
    from realrl_driver.core.driver_node import run_robot  # rclpy only where a node runs
    run_robot('ur_rtde', args)


if __name__ == '__main__':
    main()
