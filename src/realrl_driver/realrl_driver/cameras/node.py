"""A real camera on its own: sensor_msgs/Image at a fixed rate, for viewing and recording.

out: <name>/image (sensor_msgs/Image, rgb8, best effort; stamped with the frame's capture
     time, frame_id = name)
The camera is opened when the node starts and again every 2 s while it cannot be (a camera
plugged in later is picked up); a camera whose frames stop is reported, and nothing stale
is published. Robots take their cameras through the driver's ``real_cameras`` instead.
"""
from __future__ import annotations

import time

from rclpy.node import Node
from sensor_msgs.msg import Image

from realrl_common.convert import fill_image
from realrl_common.node_main import spin_node
from realrl_common.qos import SENSOR_QOS
from realrl_common.ros_params import read_config
from realrl_driver.cameras.base import CameraError, resize_rgb
from realrl_driver.cameras.factory import open_camera
from realrl_driver.cameras.node_config import CameraNodeConfig

RETRY_OPEN_S = 2.0


class CameraNode(Node):
    """Publishes one camera's newest frame as <name>/image at a fixed rate; reopens
    a camera that fails."""

    def __init__(self):
        super().__init__('camera', automatically_declare_parameters_from_overrides=True)
        self.cfg = read_config(self, CameraNodeConfig)
        self.camera = None
        self.published = 0
        self._last_index = 0
        self._tried_at = -RETRY_OPEN_S
        self._reported = ''
        self._pub = self.create_publisher(Image, f'{self.cfg.name}/image', SENSOR_QOS)
        self.create_timer(1.0 / self.cfg.rate_hz, self._publish)

    def _report(self, message: str) -> None:
        if message != self._reported:  # each distinct problem once, not at every tick
            self._reported = message
            self.get_logger().error(message)

    def _open(self, now: float) -> bool:
        if now - self._tried_at < RETRY_OPEN_S:
            return False
        self._tried_at = now
        c = self.cfg
        try:
            self.camera = open_camera(c.name, c.source, c.fps, c.max_frame_age_s,
                                      c.open_timeout_s, c.loop_files)
        except CameraError as e:
            self._report(f'{e} (trying again every {RETRY_OPEN_S:g}s)')
            return False
        self._reported = ''
        self.get_logger().info(f'camera {c.name!r} open: {self.camera.device}, publishing '
                               f'{c.name}/image at {c.rate_hz:g} Hz')
        return True

    def _publish(self):
        if self.camera is None and not self._open(time.monotonic()):
            return
        try:
            frame = self.camera.check_live()
        except CameraError as e:
            self._report(str(e))
            return
        if frame.index == self._last_index:
            return  # no new frame since the last image: send nothing twice
        self._last_index = frame.index
        self._reported = ''
        image = frame.image
        if self.cfg.width:
            image = resize_rgb(image, self.cfg.width, self.cfg.height)
        msg = Image()
        fill_image(msg, image, self.cfg.name)
        msg.header.stamp.sec = int(frame.wall)
        msg.header.stamp.nanosec = int((frame.wall % 1.0) * 1e9)
        self._pub.publish(msg)
        self.published += 1

    def close(self):
        if self.camera is not None:
            self.camera.close()
            self.camera = None


def main(args=None):
    """Runs the camera node."""
    spin_node(CameraNode, 'camera', args)


if __name__ == '__main__':
    main()
