"""A camera read through OpenCV: a device index ('0'), a V4L2 device path ('/dev/video2'),
a stream URL ('rtsp://...', 'http://...'), a video file, or an image sequence
('frames/img_%04d.png'). OpenCV is imported only when such a camera opens.
"""
from __future__ import annotations

import glob
import os

import numpy as np

from realrl_driver.cameras.base import CameraError, GrabbingCamera


def _source_kind(source: str) -> str:
    if source.isdigit():
        return 'index'
    if source.startswith('/dev/'):
        return 'device'
    if '://' in source:
        return 'url'
    return 'file'


def video_devices() -> list[str]:
    """The /dev/video* device paths, sorted."""
    return sorted(glob.glob('/dev/video*'))


class OpenCVCamera(GrabbingCamera):
    """A camera, stream, video file or image sequence read through OpenCV.

    Devices and streams are paced by themselves; files and image sequences are read at
    ``fps`` so they play in real time. At the end of a file the frames stop (the camera
    then goes stale, as an unplugged one does) unless ``loop`` starts it again."""

    def __init__(self, source: str | int, name: str = 'camera', fps: float = 30.0,
                 max_age_s: float = 0.5, open_timeout_s: float = 5.0, loop: bool = False,
                 capture_size: tuple[int, int] | None = None):
        super().__init__(name, str(source), fps, max_age_s, open_timeout_s)
        self.kind = _source_kind(self.device)
        self.loop = loop
        self.capture_size = capture_size
        """(width, height) asked of a device; None: the device's default."""
        self._cap = None

    def _connect(self) -> None:
        import cv2
        src = self.device
        if self.kind == 'file' and '%' not in src and not os.path.isfile(src):
            raise CameraError(f'camera {self.name!r}: no such video file {src!r}; give an '
                              f'existing file, a device index (0), a /dev/video* path or a URL')
        if self.kind in ('index', 'device'):
            cap = cv2.VideoCapture(int(src) if self.kind == 'index' else src, cv2.CAP_V4L2)
        else:
            cap = cv2.VideoCapture(src)
        if not cap.isOpened():
            cap.release()
            raise CameraError(self._open_error())
        if self.kind in ('index', 'device'):
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's own queue: keep it short
            cap.set(cv2.CAP_PROP_FPS, self.fps)
            if self.capture_size:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.capture_size[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.capture_size[1])
        self._cap = cap

    def _open_error(self) -> str:
        src, name = self.device, self.name
        if self.kind in ('index', 'device'):
            path = f'/dev/video{src}' if self.kind == 'index' else src
            found = video_devices()
            if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
                return (f'camera {name!r}: cannot open {path}: permission denied; add this user '
                        f'to the video group (sudo usermod -aG video $USER) and log in again')
            return (f'camera {name!r}: OpenCV (V4L2) cannot open {path}; video devices here: '
                    f'{found or "none (/dev/video* is empty)"}; plug the camera in, check '
                    f'`v4l2-ctl --list-devices`, and make sure no other program holds it')
        if self.kind == 'url':
            return (f'camera {name!r}: OpenCV cannot open the stream {src!r}; check the '
                    f'address and that the stream is up')
        return (f'camera {name!r}: OpenCV cannot open the video file or image sequence '
                f'{src!r}; check the path, and that it is a video OpenCV can decode')

    def _grab(self) -> np.ndarray | None:
        import cv2
        ok, frame = self._cap.read()
        if not ok or frame is None:
            if self.kind == 'file' and self.loop and self.frames > 0:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                return None
            if self.kind == 'file':
                raise CameraError(f'end of {self.device!r} after {self.frames} frames')
            raise OSError('the device returned no frame')
        if frame.ndim == 2:
            return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        if frame.shape[2] == 4:
            return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def _pace(self) -> float:
        return 1.0 / self.fps if self.kind == 'file' else 0.0

    def _disconnect(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
