"""A node serving robots asks again for a description it should have had (real DDS)."""
import rclpy
from ros_env import wait_for

from realrl_common import descriptions
from realrl_common.descriptions import RobotDescriptions
from realrl_common.qos import LATCHED_QOS
from realrl_interfaces.msg import RobotDescription


def test_an_observed_robot_without_description_is_subscribed_again(ros_node, monkeypatch):
    monkeypatch.setattr(descriptions, 'RESUBSCRIBE_S', 0.2)
    got = []
    # A second node in the same process stands in for the driver: its description is latched.
    driver = rclpy.create_node('driver', namespace='arm0', context=ros_node.context)
    try:
        robots = RobotDescriptions(ros_node, ['arm0'], got.append)
        # The first reader is told to lose what it gets: the delivery that went missing.
        robots._on_description = lambda msg: None  # noqa: SLF001
        robots._subscribe('arm0')
        first = robots._subs['arm0']
        pub = driver.create_publisher(RobotDescription, '/arm0/description', LATCHED_QOS)
        pub.publish(RobotDescription(robot_id='arm0', state_dim=3))
        ros_node.spin(0.5)
        assert got == [] and 'arm0' not in robots.seen and robots.renewed == 0
        del robots._on_description  # deliveries count again from here on
        assert wait_for(lambda: robots.known('arm0'), 10, spin=ros_node.spin)
        assert robots._subs['arm0'] is not first, 'the subscription was not renewed'
        assert robots.renewed >= 1 and [m.state_dim for m in got][:1] == [3]
    finally:
        driver.destroy_node()
