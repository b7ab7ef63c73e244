"""The camera node's parameters (no ROS imports: graphs validate them without rclpy)."""
from __future__ import annotations

from dataclasses import dataclass

from realrl_common.config import check
from realrl_common.plugins import NodeKind


@dataclass(frozen=True)
class CameraNodeConfig:
    """Parameters of the camera node."""

    name: str = 'camera'
    """Camera name: the topic is <name>/image (relative: add a namespace) and frame_id."""
    source: str = '0'
    """OpenCV device index, /dev/video* path, URL, video file or image sequence; or
    'realsense' / 'realsense:<serial>'."""
    rate_hz: float = 15.0
    """Images published per second (the newest frame each time)."""
    width: int = 0
    """Width of the published images; 0 with height 0: the camera's own size."""
    height: int = 0
    """Height of the published images."""
    fps: float = 30.0
    """Frame rate asked of a device; the rate a file plays at."""
    max_frame_age_s: float = 0.5
    """A newest frame older than this is not published (the camera stopped)."""
    open_timeout_s: float = 5.0
    """How long one attempt to open waits for the first frame."""
    loop_files: bool = False
    """A video file starts again at its end."""

    def __post_init__(self):
        check(bool(self.name) and self.name.replace('_', '').isalnum(),
              f'name must be letters, digits and _, got {self.name!r}')
        check(bool(self.source), 'source must name a camera, e.g. 0, /dev/video0 or realsense')
        check(self.rate_hz > 0, f'rate_hz must be > 0, got {self.rate_hz}')
        check(self.width >= 0 and self.height >= 0 and (self.width > 0) == (self.height > 0),
              f'width and height must both be > 0, or both 0 (native size); got '
              f'{self.width}x{self.height}')
        check(self.fps > 0 and self.max_frame_age_s > 0 and self.open_timeout_s > 0,
              'fps, max_frame_age_s and open_timeout_s must be > 0')


NODE = NodeKind(role='camera', config=CameraNodeConfig)
