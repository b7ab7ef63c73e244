"""Real cameras for robots: the newest RGB frame, always at hand, never waited for.

Every camera grabs in a background thread and keeps only its newest frame, so a control
tick that asks for an image gets the freshest one at once and never waits for the device
(and a slow reader never makes the device queue old frames). A frame older than
``max_age_s`` is refused with an error that names the camera, its device, how old the
newest frame is, how many frames came and why they stopped, because a robot must not
act on a picture of the past.

``OpenCVCamera`` reads anything OpenCV opens: a device index ('0'), a V4L2 device path
('/dev/video2'), a stream URL ('rtsp://...', 'http://...'), a video file, or an image
sequence ('frames/img_%04d.png'). ``RealSenseCamera`` (realsense_camera.py) reads the color
stream of an Intel RealSense through librealsense. Neither module is imported before a
camera is opened, so configs can be validated where OpenCV is not installed.
"""
from __future__ import annotations

import glob
import os
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class CameraError(RuntimeError):
    """A camera cannot be opened, or its frames stopped; the message names the device."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    """RGB, uint8, height x width x 3, at the camera's own resolution."""
    index: int
    """1 for the first frame grabbed since open, then counting up."""
    monotonic: float
    """time.monotonic() when it was grabbed (for its age)."""
    wall: float
    """time.time() when it was grabbed (for message stamps)."""


class Camera(Protocol):
    """What a robot or a node needs of a camera."""
    name: str
    device: str
    """The device, file or URL it reads, as the user wrote it."""
    fps: float

    def open(self) -> None: ...
    def latest(self) -> Frame | None:
        """The newest frame, however old; None before the first."""
        ...
    def check_live(self) -> Frame:
        """The newest frame; CameraError if there is none or it is too old."""
        ...
    def read(self, width: int, height: int) -> np.ndarray:
        """The newest frame as RGB uint8 of height x width x 3 (CameraError if too old)."""
        ...
    def close(self) -> None: ...


def resize_rgb(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """image at width x height (area averaging when shrinking), or image itself."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    import cv2
    shrink = width < image.shape[1] and height < image.shape[0]
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class GrabbingCamera:
    """The newest-frame machinery shared by all cameras: a daemon thread calls
    ``_grab()`` (which blocks until the device delivers, returns an RGB frame, or returns
    None when nothing came) and keeps only the newest frame."""

    def __init__(self, name: str, device: str, fps: float, max_age_s: float,
                 open_timeout_s: float):
        if fps <= 0 or max_age_s <= 0 or open_timeout_s <= 0:
            raise ValueError(f'camera {name!r}: fps, max_age_s and open_timeout_s must be > 0, '
                             f'got {fps}, {max_age_s}, {open_timeout_s}')
        self.name, self.device, self.fps = name, device, float(fps)
        self.max_age_s, self.open_timeout_s = float(max_age_s), float(open_timeout_s)
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._count = 0
        self._problem = ''
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._disconnect_on_exit = False
        self._grabbing = False

    # -- subclasses ---------------------------------------------------------------------
    def _connect(self) -> None:
        raise NotImplementedError

    def _grab(self) -> np.ndarray | None:
        raise NotImplementedError

    def _disconnect(self) -> None:
        raise NotImplementedError

    def _pace(self) -> float:
        """Seconds to wait between grabs (0: the device paces itself)."""
        return 0.0

    # -- the public side ----------------------------------------------------------------
    def open(self) -> None:
        """Connect, start grabbing and wait (up to open_timeout_s) for the first frame."""
        if self._thread is not None:
            return
        self._connect()
        with self._lock:
            self._frame, self._count, self._problem = None, 0, ''
            self._disconnect_on_exit = False
            self._grabbing = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f'camera-{self.name}',
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.open_timeout_s
        while self.latest() is None and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.005)
        if self.latest() is None:
            why = self._problem or f'nothing within open_timeout_s={self.open_timeout_s:g}s'
            self.close()
            raise CameraError(f'camera {self.name!r} ({self.device}) opened but gave no frame: '
                              f'{why}; check that the device streams (another program may '
                              f'hold it) or raise open_timeout_s')

    def latest(self) -> Frame | None:
        with self._lock:
            return self._frame

    def check_live(self) -> Frame:
        with self._lock:
            frame, count, problem = self._frame, self._count, self._problem
        if frame is None:
            raise CameraError(f'camera {self.name!r} ({self.device}) has no frame: it is not '
                              f'open or never delivered one')
        age = time.monotonic() - frame.monotonic
        if age > self.max_age_s:
            stamp = time.strftime('%H:%M:%S', time.localtime(frame.wall))
            raise CameraError(
                f'camera {self.name!r} ({self.device}): newest frame is {age:.2f}s old '
                f'(max_age_s {self.max_age_s:g}); {count} frames came, the last at {stamp} '
                f'({problem or "the device stopped sending"}); check its cable and power, '
                f'or raise max_age_s if it is just slow')
        return frame

    def read(self, width: int, height: int) -> np.ndarray:
        return resize_rgb(self.check_live().image, width, height)

    @property
    def frames(self) -> int:
        """How many frames were grabbed since open."""
        with self._lock:
            return self._count

    def close(self) -> None:
        """Stop grabbing and release the device. A grab stuck in the driver is not
        released under its feet: the thread releases the device when the grab returns."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
            with self._lock:
                if self._grabbing:  # still inside the device's read
                    self._disconnect_on_exit = True
                    return
        self._release()

    def _release(self) -> None:
        try:
            self._disconnect()
        except Exception:  # noqa: BLE001 (a device gone already is closed)
            pass

    def _run(self) -> None:
        try:
            self._grab_until_stopped()
        finally:
            with self._lock:
                self._grabbing = False
                release = self._disconnect_on_exit
            if release:
                self._release()

    def _grab_until_stopped(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                image = self._grab()
            except CameraError as e:  # a source that cannot deliver again (end of a file)
                with self._lock:
                    self._problem = str(e)
                return
            except Exception as e:  # noqa: BLE001 (any driver fault: report, try again)
                image = None
                with self._lock:
                    self._problem = f'{type(e).__name__}: {e}'
            if image is None:
                self._stop.wait(0.01)
                continue
            with self._lock:
                self._count += 1
                self._frame = Frame(image, self._count, time.monotonic(), time.time())
            pause = self._pace()
            if pause > 0:  # keep the rate; after a stall, restart the rhythm, no burst
                now = time.monotonic()
                next_at = next_at + pause if next_at + pause > now - pause else now
                self._stop.wait(max(0.0, next_at - now))


def _source_kind(source: str) -> str:
    if source.isdigit():
        return 'index'
    if source.startswith('/dev/'):
        return 'device'
    if '://' in source:
        return 'url'
    return 'file'


def video_devices() -> list[str]:
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


def open_camera(name: str, source: str, fps: float = 30.0, max_age_s: float = 0.5,
                open_timeout_s: float = 5.0, loop_files: bool = False) -> GrabbingCamera:
    """An opened camera for a source spec: 'realsense' or 'realsense:<serial>' for an Intel
    RealSense, anything else for OpenCV (index, /dev path, URL, file)."""
    if source == 'realsense' or source.startswith('realsense:'):
        from realrl_driver.realsense_camera import RealSenseCamera
        cam = RealSenseCamera(source.partition(':')[2], name, fps=fps, max_age_s=max_age_s,
                              open_timeout_s=open_timeout_s)
    else:
        cam = OpenCVCamera(source, name, fps, max_age_s, open_timeout_s, loop=loop_files)
    cam.open()
    return cam
