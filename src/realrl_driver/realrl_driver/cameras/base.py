"""Real cameras for robots: the newest RGB frame, always at hand, never waited for.

Every camera grabs in a background thread and keeps only its newest frame, so a control
tick that asks for an image gets the freshest one at once and never waits for the device
(and a slow reader never makes the device queue old frames). A frame older than
``max_age_s`` is refused with an error that names the camera, its device, how old the
newest frame is, how many frames came and why they stopped, because a robot must not
act on a picture of the past.

This module holds what every camera shares (``Frame``, ``CameraError``, the
``GrabbingCamera`` thread); the kinds live beside it: ``opencv.OpenCVCamera`` and
``realsense.RealSenseCamera``, and ``factory.open_camera`` picks one for a source spec.
Neither OpenCV nor librealsense is imported before a camera is opened, so configs can be
validated where they are not installed.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class CameraError(RuntimeError):
    """A camera cannot be opened, or its frames stopped; the message names the device."""


@dataclass(frozen=True)
class Frame:
    """One grabbed image and when it was grabbed."""

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
    """Image at width x height (area averaging when shrinking), or image itself."""
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
