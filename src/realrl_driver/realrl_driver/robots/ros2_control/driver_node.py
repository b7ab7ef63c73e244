"""The driver node of a ros2_control robot, and the ``ros2_control_driver`` entry point.

``Ros2ControlDriverNode`` is the generic ``DriverNode`` plus what a real robot needs: a tick
first checks that the joint states are fresh (else the robot holds and the tick is skipped;
a position-mode hold sends nothing until they are fresh again, see ``Ros2ControlArm.hold``);
a ``RobotFault`` during a tick is logged and the episode abandoned instead of ending the
process; a reset keeps the heartbeat going; and the link (link.py) is closed with the robot.
"""
from __future__ import annotations

import time

from rclpy.lifecycle import TransitionCallbackReturn

from realrl_common.node_main import spin_node
from realrl_common.plugins import robot_kind
from realrl_driver.core.driver_node import DriverNode
from realrl_driver.robots.ros2_control.robot import RobotFault


class Ros2ControlDriverNode(DriverNode):
    """A DriverNode for a robot that can fail under it (see the module docstring)."""

    def __init__(self, name, config_cls, make_robot, kind):
        super().__init__(name, config_cls, make_robot, kind)
        self._fault, self._fault_logged, self._last_beat = '', 0.0, 0.0

    def on_configure(self, state):
        result = super().on_configure(state)
        if result == TransitionCallbackReturn.SUCCESS:
            arm = getattr(self.robot, 'inner', self.robot)  # under real cameras, if any
            arm.on_wait = self._heartbeat
        return result

    def on_cleanup(self, state):
        self._release_robot()
        return super().on_cleanup(state)

    def close(self):
        super().close()
        self._release_robot()

    def _release_robot(self):
        """Hold and close the link (closing twice is harmless, so a DriverNode that closes
        robots itself loses nothing)."""
        if self.robot is not None:
            self.robot.close()

    def _heartbeat(self):
        """While a reset waits: the status goes on, so nobody takes the driver for dead."""
        now = time.monotonic()
        if now - self._last_beat >= 0.2:
            self._last_beat = now
            self._publish_status()

    def _tick(self):
        problem = self.robot.problem() if self.robot is not None else ''
        if problem:
            self.robot.hold()
            self._on_fault('joint states', problem)
            return
        try:
            super()._tick()
        except RobotFault as e:
            self._on_fault(type(e).__name__, str(e))
            if self.loop is not None:
                self.loop.obs = None  # the episode is abandoned; a new one starts with a reset
            return
        if self._fault:
            self.get_logger().info('robot recovered: a new episode starts')
            self._fault = ''

    def _on_fault(self, kind: str, problem: str):
        """The robot holds: log once per kind of fault (again every 5 s while it lasts),
        count it as a hold, and abandon the episode."""
        now = time.monotonic()
        if kind != self._fault or now - self._fault_logged > 5.0:
            self.get_logger().error(f'robot holds: {problem}')
            self._fault_logged = now
        if not self._fault and self.loop is not None:
            self.loop.counters['watchdog_holds'] += 1
            self.loop.counters['robot_faults'] += 1
            self.loop.obs = None
        self._fault = kind


def main(args=None) -> None:
    """spin_node without rclpy's signal handlers: on SIGINT/SIGTERM the node holds the robot
    (zero velocity) over ROS before ROS shuts down."""
    robot = robot_kind('ros2_control')
    spin_node(lambda: Ros2ControlDriverNode('driver', robot.config, robot.factory(),
                                            kind='ros2_control'),
              'driver', args, keep_ros_on_signal=True)


if __name__ == '__main__':
    main()
