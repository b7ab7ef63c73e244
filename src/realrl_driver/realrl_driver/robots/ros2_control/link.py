"""The ROS side of a ros2_control robot: the link to its controller manager.

``Ros2ControlLink`` is a small node of its own in the driver process, spun by its own thread,
so joint states keep arriving while the driver's thread is busy. It subscribes to the
joint_state_broadcaster's topic and publishes std_msgs/Float64MultiArray to the forward
command controller. It is the ``JointPort`` of ``Ros2ControlArm`` (robot.py),
which decides every command. In velocity mode the link also sends zero velocity when no new
command came for ``VELOCITY_LOOKAHEAD`` control periods, because a forward velocity
controller keeps the last velocity forever.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from realrl_driver.robots.ros2_control.config import Ros2ControlConfig
from realrl_driver.robots.ros2_control.robot import (
    VELOCITY_LOOKAHEAD,
    JointReading,
    Ros2ControlArm,
    readiness_problem,
)

# Best effort matches a broadcaster of either reliability; commands are reliable, newest wins.
JOINT_STATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT,
                             history=HistoryPolicy.KEEP_LAST)
JOINT_COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                               history=HistoryPolicy.KEEP_LAST)


class Ros2ControlLink:
    """Joint states in, commands out, over ROS; a ``JointPort``. Thread-safe."""

    def __init__(self, cfg: Ros2ControlConfig, namespace: str, period_s: float):
        self.cfg = cfg
        n = len(cfg.joints)
        self._index = {name: i for i, name in enumerate(cfg.joints)}
        self._lock = threading.Lock()
        self._position, self._velocity = np.zeros(n), np.zeros(n)
        self._stamp = np.full(n, -np.inf)  # monotonic receive time per joint
        self._seen: set[str] = set()
        self._last_write, self._moving = 0.0, False
        self._closed = False
        # Own arguments: the process's remaps (__node:=driver) are the driver node's.
        self.node = rclpy.create_node('ros2_control_link', namespace='/' + namespace,
                                      use_global_arguments=False)
        self._sub = self.node.create_subscription(JointState, cfg.joint_states_topic,
                                                  self._on_joint_state, JOINT_STATE_QOS)
        self._pub = self.node.create_publisher(Float64MultiArray, cfg.commands_topic,
                                               JOINT_COMMAND_QOS)
        self._velocity_timeout = VELOCITY_LOOKAHEAD * period_s
        if cfg.command_interface == 'velocity':
            self.node.create_timer(period_s / 2, self._expire_velocity)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name='ros2_control_link',
                                        daemon=True)
        self._thread.start()

    def _spin(self):
        try:
            while not self._closed and rclpy.ok():
                self._executor.spin_once(timeout_sec=0.1)
        except (ExternalShutdownException, KeyboardInterrupt):
            pass

    def _on_joint_state(self, msg: JointState):
        now = time.monotonic()
        with self._lock:
            self._seen.update(msg.name)
            has_velocity = len(msg.velocity) == len(msg.name)
            for k, name in enumerate(msg.name):
                i = self._index.get(name)
                if i is None or k >= len(msg.position) or not np.isfinite(msg.position[k]):
                    continue
                p = msg.position[k]
                if has_velocity and np.isfinite(msg.velocity[k]):
                    self._velocity[i] = msg.velocity[k]
                elif now > self._stamp[i]:  # no velocity interface: a difference quotient
                    self._velocity[i] = (p - self._position[i]) / (now - self._stamp[i]) \
                        if np.isfinite(self._stamp[i]) else 0.0
                self._position[i], self._stamp[i] = p, now

    # -- JointPort ------------------------------------------------------------------------
    def read(self) -> JointReading | None:
        with self._lock:
            if not np.all(np.isfinite(self._stamp)):
                return None
            return JointReading(self._position.copy(), self._velocity.copy(),
                                float(time.monotonic() - self._stamp.min()))

    def write(self, command: np.ndarray) -> None:
        with self._lock:
            self._publish(command)

    def _publish(self, command: np.ndarray) -> None:
        """Send one command (the lock is held)."""
        if self._closed:
            return
        try:
            self._pub.publish(Float64MultiArray(data=[float(x) for x in command]))
        except Exception as e:  # noqa: BLE001 - a dead context must not hide a hold
            self.node.get_logger().error(f'cannot send a joint command: {e}')
            return
        self._last_write, self._moving = time.monotonic(), bool(np.any(command != 0))

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def now(self) -> float:
        return time.monotonic()

    # -- connection -------------------------------------------------------------------------
    def wait_ready(self, timeout_s: float) -> str:
        """Wait until every joint has a state and the controller subscribes to commands;
        returns '' or what is missing (with the fix)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                seen = set(self._seen) if self._seen else None
                complete = bool(np.all(np.isfinite(self._stamp)))
            subscribers = self._pub.get_subscription_count()
            if complete and subscribers > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        publishers = self.node.count_publishers(self._sub.topic_name)
        return readiness_problem(self.cfg, seen, publishers, subscribers,
                                 *self._other_topics())

    def _other_topics(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """JointState topics, and Float64MultiArray topics named */commands, other than the
        configured ones (where a namespaced controller manager has put them)."""
        states, commands = [], []
        for name, types in self.node.get_topic_names_and_types():
            if 'sensor_msgs/msg/JointState' in types and name != self._sub.topic_name:
                states.append(name)
            if 'std_msgs/msg/Float64MultiArray' in types and name.endswith('/commands') \
                    and name != self._pub.topic_name:
                commands.append(name)
        return tuple(sorted(states)), tuple(sorted(commands))

    def _expire_velocity(self):
        """A velocity nobody renewed for VELOCITY_LOOKAHEAD periods is replaced by zero."""
        with self._lock:
            if self._moving and time.monotonic() - self._last_write > self._velocity_timeout:
                self._publish(np.zeros(len(self.cfg.joints)))

    def close(self) -> None:
        """Let the last command reach the controller, then stop the thread and the node."""
        if self._closed:
            return
        try:
            self._pub.wait_for_all_acked(Duration(seconds=0.5))
        except Exception:  # noqa: BLE001 - shutting down anyway
            pass
        with self._lock:
            self._closed = True
        self._thread.join(timeout=1.0)
        self._executor.shutdown(timeout_sec=0.5)
        self.node.destroy_node()


def make_ros2_control_robot(cfg) -> Ros2ControlArm:
    """Connect to the robot's ros2_control; RuntimeError naming what is missing."""
    period = 1.0 / cfg.control_hz
    link = Ros2ControlLink(cfg.ros2_control, cfg.robot_id, period)
    try:
        robot = Ros2ControlArm(cfg.ros2_control, link, period)
        problem = link.wait_ready(cfg.ros2_control.connect_timeout_s) or robot.start_problem()
        if problem:
            raise RuntimeError(problem)
    except BaseException:
        link.close()
        raise
    return robot
