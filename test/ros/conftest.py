"""Fixtures for tests that run nodes over real DDS, each on its own domain."""
import time

import pytest
from ros_env import isolate, next_domain_id, require_workspace


@pytest.fixture
def ros_domain():
    """A private ROS_DOMAIN_ID (localhost discovery) for this test and its processes."""
    require_workspace()
    domain = next_domain_id()
    isolate(domain)
    return domain


@pytest.fixture
def ros_node(ros_domain):
    """An rclpy node in the test process, on the test's domain; torn down after."""
    import rclpy
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('test_probe', context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def spin(duration=0.05):
        """Serve callbacks for the whole duration (spin_once alone returns after one)."""
        end = time.monotonic() + duration
        while True:
            executor.spin_once(timeout_sec=max(0.0, end - time.monotonic()))
            if time.monotonic() >= end:
                return
    node.spin = spin
    yield node
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)
