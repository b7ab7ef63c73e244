"""A simulated Universal Robots controller behind ur_rtde's Python interface (no ROS imports).

`RTDEReceiveInterface` and `RTDEControlInterface` here have the constructors, method names,
positional argument order and return types of the classes of the same names in ur_rtde
1.6.5 (`rtde_receive`, `rtde_control`), for the subset the realrl UR driver uses. So the
driver runs one code path against a real arm and against this module.

Behind them is `SimURController`, one simulated controller box: the UR5e-like MuJoCo arm of
`arm_models/ur5e6.xml` (through `MujocoArmSim`), its robot and safety modes, and a log of
every command it received (`commands`), so tests can check that nothing outside the
driver's limits ever arrived. `serve(host)` puts a controller "on the network" under a host
name; constructing an interface for a host nobody serves fails with the real SDK's text.

Time is driven by commands, not by the wall clock, so runs are repeatable: `servoJ(q, ...,
t, ...)` tracks q for t seconds of physics, `servoStop` and `stopJ` let the arm settle, and
`moveJ` runs the whole move before it returns (asynchronous or not). Like a real controller,
the simulated one protective-stops on a target it cannot take (not finite, outside the
joints' range, or faster than the joints can go) and then refuses commands (they return
False) until `unlock_protective_stop()`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig, MujocoArmSim, mujoco
from realrl_driver.robots.ur_rtde.config import UR5E_HOME

RTDE_PORT = 30004
HARDWARE_MAX_JOINT_SPEED = math.pi
"""rad/s; the UR5e's fastest joints (180 deg/s). A servo target further than this allows
within its time is refused with a protective stop."""

# Robot modes and safety modes as ur_rtde reports them (getRobotMode, getSafetyMode).
ROBOT_MODE_POWER_OFF, ROBOT_MODE_IDLE, ROBOT_MODE_RUNNING = 3, 5, 7
SAFETY_MODE_NORMAL, SAFETY_MODE_PROTECTIVE_STOP = 1, 3
SAFETY_MODE_ROBOT_EMERGENCY_STOP = 7


@dataclass(frozen=True)
class SimCommand:
    """One command as the simulated controller received it."""

    name: str
    """The SDK method, e.g. 'servoJ'."""
    args: tuple
    """Its arguments, positionally, as floats and lists of floats."""
    q: np.ndarray
    """Measured joint positions (rad) when it arrived."""
    tcp: np.ndarray
    """Measured TCP pose (x, y, z in m, rotation vector in rad) when it arrived."""
    time: float
    """Simulated controller time (s) when it arrived."""


def rotvec_to_matrix(rotvec) -> np.ndarray:
    """The 3x3 rotation matrix of a rotation vector (axis times angle)."""
    r = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(r))
    quat = np.array([1.0, 0.0, 0.0, 0.0])
    if angle > 0:
        mujoco.mju_axisAngle2Quat(quat, r / angle, angle)
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, quat)
    return mat.reshape(3, 3)


def matrix_to_rotvec(mat) -> np.ndarray:
    """The rotation vector (axis times angle) of a 3x3 rotation matrix."""
    quat, rotvec = np.zeros(4), np.zeros(3)
    mujoco.mju_mat2Quat(quat, np.asarray(mat, dtype=np.float64).reshape(9))
    mujoco.mju_quat2Vel(rotvec, quat, 1.0)
    return rotvec


class SimURController:
    """The simulated controller box: arm, modes, command log."""

    def __init__(self, host: str = 'sim', home_q=UR5E_HOME):
        self.host = host
        self.arm = MujocoArmSim(ArmSimConfig(model='ur5e6', control_hz=500.0,
                                             home_qpos=tuple(home_q), home_noise_rad=0.0))
        self.model, self.data = self.arm.model, self.arm.data
        self._scratch = mujoco.MjData(self.model)
        self._site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, 'ee')
        self.q_low = self.model.jnt_range[:, 0].copy()
        self.q_high = self.model.jnt_range[:, 1].copy()
        self.robot_mode = ROBOT_MODE_RUNNING
        self.safety_mode = SAFETY_MODE_NORMAL
        self.program_running = True
        self.stop_reason = ''
        self.time = 0.0
        self.commands: list[SimCommand] = []
        self.violations: list[str] = []
        """Why the controller protective-stopped, one entry per stop it made itself."""

    # -- state --------------------------------------------------------------------------
    @property
    def q(self) -> np.ndarray:
        return self.data.qpos.copy()

    @property
    def qd(self) -> np.ndarray:
        return self.data.qvel.copy()

    def tcp_pose(self, q=None) -> np.ndarray:
        """The TCP pose (x, y, z, rx, ry, rz) at q (default: where the arm is)."""
        d = self.data
        if q is not None:
            d = self._scratch
            d.qpos[:] = q
            mujoco.mj_kinematics(self.model, d)
        return np.concatenate([d.site_xpos[self._site], matrix_to_rotvec(d.site_xmat[self._site])])

    def running(self) -> bool:
        return (self.program_running and self.robot_mode == ROBOT_MODE_RUNNING
                and self.safety_mode == SAFETY_MODE_NORMAL)

    # -- what a person or the safety system does -----------------------------------------
    def protective_stop(self, why: str) -> None:
        self.stop_reason = why
        self.safety_mode = SAFETY_MODE_PROTECTIVE_STOP
        self.program_running = False  # the controller ends the ur_rtde script
        self.data.ctrl[:] = self.data.qpos
        self.data.qvel[:] = 0.0

    def unlock_protective_stop(self) -> None:
        self.safety_mode = SAFETY_MODE_NORMAL
        self.program_running = True  # as after reuploadScript()

    def press_emergency_stop(self) -> None:
        self.protective_stop('emergency stop')
        self.safety_mode = SAFETY_MODE_ROBOT_EMERGENCY_STOP

    def power_off(self) -> None:
        self.robot_mode = ROBOT_MODE_POWER_OFF
        self.program_running = False

    # -- commands -----------------------------------------------------------------------
    def record(self, name: str, *args) -> None:
        plain = tuple([float(v) for v in a] if isinstance(a, (list, tuple, np.ndarray)) else a
                      for a in args)
        self.commands.append(SimCommand(name, plain, self.q, self.tcp_pose(), self.time))

    def step(self, seconds: float) -> None:
        n = max(1, round(seconds / self.model.opt.timestep))
        mujoco.mj_step(self.model, self.data, nstep=n)
        mujoco.mj_kinematics(self.model, self.data)
        self.time += n * self.model.opt.timestep

    def settle(self, max_seconds: float = 1.0) -> None:
        self.data.ctrl[:] = self.data.qpos
        for _ in range(int(max_seconds / 0.02)):
            self.step(0.02)
            if np.max(np.abs(self.data.qvel)) < 1e-3:
                return

    def refuse(self, q, seconds: float) -> str:
        """Why a target q for `seconds` of motion is one this controller will not take."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (self.model.nq,) or not np.all(np.isfinite(q)):
            return f'target {q.tolist()} is not {self.model.nq} finite joint positions'
        if np.any(q < self.q_low) or np.any(q > self.q_high):
            return f'target {q.round(4).tolist()} is outside the joint range'
        speed = np.max(np.abs(q - self.data.qpos)) / max(seconds, 1e-9)
        if speed > HARDWARE_MAX_JOINT_SPEED:
            return f'target needs {speed:.2f} rad/s, above {HARDWARE_MAX_JOINT_SPEED:.2f}'
        return ''

    def servo(self, q, seconds: float) -> bool:
        if not self.running():
            return False
        why = self.refuse(q, seconds)
        if why:
            self.violations.append(why)
            self.protective_stop(why)
            return False
        self.data.ctrl[:] = q
        self.step(seconds)
        return True

    def move(self, q, speed: float, acceleration: float) -> bool:
        """A joint move at `speed` (rad/s of the leading joint), run to its end."""
        if not self.running():
            return False
        start, goal = self.q, np.asarray(q, dtype=np.float64)
        distance = float(np.max(np.abs(goal - start)))
        steps = max(1, math.ceil(distance / max(speed, 1e-6) / 0.02))
        for k in range(1, steps + 1):  # its own trajectory: no speed check against the arm
            self.data.ctrl[:] = start + (goal - start) * k / steps
            self.step(0.02)
        self.data.ctrl[:] = goal
        for _ in range(100):
            self.step(0.02)
            if np.max(np.abs(self.data.qvel)) < 1e-3:
                break
        return True

    def inverse_kinematics(self, pose, qnear, tolerance: float = 1e-5) -> list[float]:
        """Joint positions near qnear that put the TCP at pose; [] if none was found."""
        m, s = self.model, self._scratch
        target_p = np.asarray(pose[:3], dtype=np.float64)
        target_r = rotvec_to_matrix(pose[3:6])
        s.qpos[:] = qnear
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        for _ in range(50):
            mujoco.mj_kinematics(m, s)
            mujoco.mj_comPos(m, s)
            err_p = target_p - s.site_xpos[self._site]
            err_r = matrix_to_rotvec(target_r @ s.site_xmat[self._site].reshape(3, 3).T)
            if np.linalg.norm(err_p) < tolerance and np.linalg.norm(err_r) < 10 * tolerance:
                return [float(v) for v in s.qpos]
            mujoco.mj_jacSite(m, s, jp, jr, self._site)
            jac, err = np.vstack([jp, jr]), np.concatenate([err_p, err_r])
            s.qpos[:] += jac.T @ np.linalg.solve(jac @ jac.T + 1e-6 * np.eye(6), err)
        return []


_CONTROLLERS: dict[str, SimURController] = {}


def serve(host: str = 'sim', home_q=UR5E_HOME) -> SimURController:
    """Start a simulated controller reachable as `host` (replacing one already there)."""
    _CONTROLLERS[host] = SimURController(host, home_q)
    return _CONTROLLERS[host]


def unserve(host: str) -> None:
    """Take the controller at `host` off the simulated network."""
    _CONTROLLERS.pop(host, None)


def _reach(hostname: str) -> SimURController:
    controller = _CONTROLLERS.get(hostname)
    if controller is None:  # the real SDK's words for a host that does not answer
        raise RuntimeError(f'Error: Could not connect to: {hostname} at {RTDE_PORT}, '
                           f'verify the IP')
    return controller


class RTDEReceiveInterface:
    """The simulated peer of rtde_receive.RTDEReceiveInterface."""

    def __init__(self, hostname: str, frequency: float = -1.0, variables: list = [],
                 verbose: bool = False, use_upper_range_registers: bool = False,
                 rt_priority: int = 0) -> None:
        self._c = _reach(hostname)
        self._connected = True

    def getActualQ(self) -> list[float]:
        return [float(v) for v in self._c.q]

    def getActualQd(self) -> list[float]:
        return [float(v) for v in self._c.qd]

    def getActualTCPPose(self) -> list[float]:
        return [float(v) for v in self._c.tcp_pose()]

    def getRobotMode(self) -> int:
        return int(self._c.robot_mode)

    def getSafetyMode(self) -> int:
        return int(self._c.safety_mode)

    def isProtectiveStopped(self) -> bool:
        return self._c.safety_mode == SAFETY_MODE_PROTECTIVE_STOP

    def isEmergencyStopped(self) -> bool:
        return self._c.safety_mode == SAFETY_MODE_ROBOT_EMERGENCY_STOP

    def getTimestamp(self) -> float:
        return float(self._c.time)

    def isConnected(self) -> bool:
        return self._connected

    def disconnect(self) -> None:
        self._connected = False

    def reconnect(self) -> bool:
        self._connected = True
        return True


class RTDEControlInterface:
    """The simulated peer of rtde_control.RTDEControlInterface (commands are logged)."""

    FLAG_UPLOAD_SCRIPT = 1

    def __init__(self, hostname: str, frequency: float = -1.0, flags: int = 1,
                 ur_cap_port: int = 50002, rt_priority: int = 0) -> None:
        self._c = _reach(hostname)
        self._connected = True
        if self._c.robot_mode == ROBOT_MODE_RUNNING and self._c.safety_mode == SAFETY_MODE_NORMAL:
            self._c.program_running = True  # the control script is uploaded and started

    def servoJ(self, q, speed, acceleration, time, lookahead_time, gain) -> bool:
        self._c.record('servoJ', q, speed, acceleration, time, lookahead_time, gain)
        return self._c.servo(q, float(time))

    def servoStop(self, a: float = 10.0) -> bool:
        self._c.record('servoStop', a)
        if not self._c.running():
            return False
        self._c.settle()
        return True

    def moveJ(self, q, speed: float = 1.05, acceleration: float = 1.4,
              asynchronous: bool = False) -> bool:
        self._c.record('moveJ', q, speed, acceleration, asynchronous)
        why = self._c.refuse(q, math.inf)
        if why:
            self._c.violations.append(why)
            self._c.protective_stop(why)
            return False
        return self._c.move(q, float(speed), float(acceleration))

    def stopJ(self, a: float = 2.0, asynchronous: bool = False) -> None:
        self._c.record('stopJ', a, asynchronous)
        self._c.settle()

    def triggerProtectiveStop(self) -> bool:
        self._c.record('triggerProtectiveStop')
        self._c.protective_stop('triggered by the client')
        return True

    def getForwardKinematics(self, q: list = [], tcp_offset: list = []) -> list[float]:
        return [float(v) for v in self._c.tcp_pose(q if len(q) else None)]

    def getInverseKinematics(self, x, qnear: list = [], max_position_error: float = 1e-10,
                             max_orientation_error: float = 1e-10) -> list[float]:
        if not self._c.running():
            return []
        near = qnear if len(qnear) else self._c.q
        return self._c.inverse_kinematics(x, near, max(max_position_error, 1e-5))

    def isProgramRunning(self) -> bool:
        return self._c.program_running

    def isConnected(self) -> bool:
        return self._connected

    def stopScript(self) -> None:
        self._c.record('stopScript')
        self._c.program_running = False

    def disconnect(self) -> None:
        self._c.program_running = False  # disconnecting ends the control script
        self._connected = False
