"""An Intel RealSense color stream as a realrl camera, through librealsense (pyrealsense2).

pyrealsense2 is optional: it is imported only when a RealSense camera is opened, and every
way that can fail (module not installed, its USB library missing, no camera connected, the
asked serial not among those connected) ends in a ``CameraError`` that says what was found
and how to fix it.
"""
from __future__ import annotations

import numpy as np

from realrl_driver.cameras.base import CameraError, GrabbingCamera

PIP_HINT = 'pip install pyrealsense2==2.59.1.11053 (scripts/setup.sh installs it)'


def import_realsense(name: str = 'realsense'):
    """The pyrealsense2 module, or a CameraError saying why it cannot be used."""
    try:
        import pyrealsense2 as rs
    except ModuleNotFoundError as e:
        raise CameraError(f'camera {name!r}: Intel RealSense cameras need the pyrealsense2 '
                          f'module, which is not installed ({e}); {PIP_HINT}') from None
    except ImportError as e:  # installed, but a shared library it links is missing
        fix = ('install the USB library it needs: sudo apt-get install libusb-1.0-0'
               if 'libusb' in str(e) else f'reinstall it: {PIP_HINT}')
        raise CameraError(f'camera {name!r}: pyrealsense2 is installed but cannot load '
                          f'({e}); {fix}') from None
    return rs


def connected_realsenses(rs) -> list[tuple[str, str]]:
    """(serial, product name) of every RealSense librealsense sees."""
    found = []
    for dev in rs.context().query_devices():
        found.append((dev.get_info(rs.camera_info.serial_number),
                      dev.get_info(rs.camera_info.name)))
    return found


class RealSenseCamera(GrabbingCamera):
    """The color stream of one RealSense (the first one found, or the one with ``serial``),
    captured at ``capture_size`` and ``fps`` in RGB; ``read`` resizes."""

    def __init__(self, serial: str = '', name: str = 'realsense', fps: float = 30.0,
                 max_age_s: float = 0.5, open_timeout_s: float = 5.0,
                 capture_size: tuple[int, int] = (640, 480)):
        super().__init__(name, f'realsense:{serial}' if serial else 'realsense', fps,
                         max_age_s, open_timeout_s)
        self.serial = serial
        self.capture_size = capture_size
        self._rs = None
        self._pipeline = None

    def _connect(self) -> None:
        rs = import_realsense(self.name)
        found = connected_realsenses(rs)
        listing = ', '.join(f'{s} ({n})' for s, n in found) or 'none'
        asked = f' (asked for serial {self.serial})' if self.serial else ''
        if not found:
            raise CameraError(
                f'camera {self.name!r}: no Intel RealSense found{asked} (librealsense sees 0 '
                f'devices); connect it to a USB 3 port, check `lsusb | grep 8086`, and install '
                f'Intel\'s udev rules (99-realsense-libusb.rules) so that this user may open it')
        if self.serial and self.serial not in [s for s, _ in found]:
            raise CameraError(f'camera {self.name!r}: no RealSense with serial {self.serial!r}; '
                              f'connected: {listing}; use one of those serials')
        serial = self.serial or found[0][0]
        config = rs.config()
        config.enable_device(serial)
        width, height = self.capture_size
        config.enable_stream(rs.stream.color, width, height, rs.format.rgb8, int(round(self.fps)))
        pipeline = rs.pipeline()
        try:
            pipeline.start(config)
        except RuntimeError as e:
            raise CameraError(f'camera {self.name!r}: RealSense {serial} cannot stream color at '
                              f'{width}x{height} {self.fps:g} fps ({e}); pick a mode it has '
                              f'(realsense-viewer lists them)') from None
        self._rs, self._pipeline = rs, pipeline
        self.device = f'realsense:{serial}'

    def _grab(self) -> np.ndarray | None:
        ok, frames = self._pipeline.try_wait_for_frames(int(self.max_age_s * 1000) + 100)
        if not ok:
            raise OSError('no frameset from librealsense')
        color = frames.get_color_frame()
        if not color:
            return None
        return np.asanyarray(color.get_data()).copy()

    def _disconnect(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None
