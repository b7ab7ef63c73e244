"""Real cameras attached to any robot driver (``real_cameras`` in a driver's config).

A robot renders its own cameras (a simulator's, a gym environment's). ``RobotWithCameras``
wraps any robot and answers ``render`` for the attached real cameras from their newest
frames, passing everything else to the robot inside. Their frames join every observation
beside the robot's own cameras, at the driver's ``image_size``.

Two rules keep a robot from acting on a picture of the past:
- before ``apply`` or ``reset`` moves the robot, every attached camera must have a frame
  younger than ``max_frame_age_s``; otherwise a ``CameraError`` (naming the camera, the
  device and the frame's age) is raised and the robot is not moved;
- right after the robot moved, the newest frame of each camera is taken, and that snapshot
  is what ``render`` returns for the new observation (so image and state belong together,
  and rendering cannot fail once the robot has moved).

This module imports neither OpenCV nor librealsense: configs validate without them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from realrl_common.config import check
from realrl_driver.cameras.base import Camera, CameraError, Frame, resize_rgb


def parse_camera_spec(spec: str) -> tuple[str, str]:
    """'name=source' -> (name, source); ValueError naming the spec and the fix."""
    name, sep, source = spec.partition('=')
    name, source = name.strip(), source.strip()
    check(bool(sep) and bool(source),
          f"sources: {spec!r} must read 'name=source', e.g. 'wrist=/dev/video0', "
          f"'front=realsense:123456789012' or 'demo=/data/clip.avi'")
    check(bool(name) and name.replace('_', '').isalnum(),
          f'sources: camera name {name!r} in {spec!r} must be letters, digits and _')
    if source.startswith('realsense:'):
        serial = source.partition(':')[2]
        check(serial.isalnum(), f'sources: {spec!r}: a RealSense serial is letters and '
                                f"digits (e.g. 'realsense:123456789012'), got {serial!r}")
    return name, source


@dataclass(frozen=True)
class RealCamerasConfig:
    """Real cameras attached to a robot's observations, and how they are read."""

    sources: tuple[str, ...] = ()
    """One 'name=source' per real camera. source: an OpenCV device index ('0'), a V4L2 path
    ('/dev/video2'), a stream URL ('rtsp://...'), a video file or image sequence
    ('clip.avi', 'img_%04d.png'); or 'realsense' (the first Intel RealSense found) or
    'realsense:<serial>'. The names join the driver's `cameras` in every observation."""
    fps: float = 30.0
    """Frame rate asked of devices, and the rate files and image sequences play at."""
    max_frame_age_s: float = 0.5
    """The robot does not move while a camera's newest frame is older than this."""
    open_timeout_s: float = 5.0
    """How long configure waits for each camera's first frame."""
    loop_files: bool = False
    """A video file starts again at its end (demos, tests); otherwise its end is a camera
    that stopped."""

    def __post_init__(self):
        names = [parse_camera_spec(s)[0] for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        check(not dupes, f'sources: camera names must differ; {dupes} repeat')
        check(self.fps > 0, f'fps must be > 0, got {self.fps}')
        check(self.max_frame_age_s > 0,
              f'max_frame_age_s must be > 0, got {self.max_frame_age_s}')
        check(self.open_timeout_s > 0,
              f'open_timeout_s must be > 0, got {self.open_timeout_s}')

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(parse_camera_spec(s)[0] for s in self.sources)


class RobotWithCameras:
    """A robot with real cameras attached; see the module docstring for the rules."""

    def __init__(self, robot, cameras: dict[str, Camera]):
        self._robot = robot
        self.cameras = dict(cameras)
        self._snapshot: dict[str, Frame] = {}

    def __getattr__(self, name: str):
        if name.startswith('__') or name == '_robot':
            raise AttributeError(name)
        return getattr(self._robot, name)  # state_dim, action bounds, kind, outcome, ...

    @property
    def inner(self):
        return self._robot

    @property
    def capabilities(self) -> tuple[str, ...]:
        own = tuple(getattr(self._robot, 'capabilities', ()))
        return own if 'cameras' in own else own + ('cameras',)

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(getattr(self._robot, 'camera_names', ())) + tuple(self.cameras)

    def check_cameras(self) -> None:
        """CameraError unless every attached camera has a fresh frame."""
        for cam in self.cameras.values():
            cam.check_live()

    def _take_snapshot(self) -> None:
        self._snapshot = {name: cam.latest() for name, cam in self.cameras.items()}

    def reset(self, seed):
        self.check_cameras()
        state = self._robot.reset(seed)
        self._take_snapshot()
        return state

    def apply(self, action):
        self.check_cameras()
        state = self._robot.apply(action)
        self._take_snapshot()
        return state

    def hold(self) -> None:
        self._robot.hold()

    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        if camera not in self.cameras:
            return self._robot.render(camera, width, height)
        frame = self._snapshot.get(camera) or self.cameras[camera].check_live()
        return resize_rgb(frame.image, width, height)

    def close(self) -> None:
        for cam in self.cameras.values():
            cam.close()
        close = getattr(self._robot, 'close', None)
        if callable(close):
            close()


def open_real_cameras(cfg: RealCamerasConfig) -> dict[str, Camera]:
    """Open every camera of cfg (all or none: a failure closes those already open)."""
    from realrl_driver.cameras.factory import open_camera
    opened: dict[str, Camera] = {}
    try:
        for spec in cfg.sources:
            name, source = parse_camera_spec(spec)
            opened[name] = open_camera(name, source, cfg.fps, cfg.max_frame_age_s,
                                       cfg.open_timeout_s, cfg.loop_files)
    except BaseException:
        for cam in opened.values():
            cam.close()
        raise
    return opened


def build_robot(make_robot: Callable, cfg):
    """make_robot(cfg), with cfg.real_cameras attached when the config has any. Cameras
    open first, so a missing camera fails before the robot is connected."""
    real = getattr(cfg, 'real_cameras', None)
    if real is None or not real.sources:
        return make_robot(cfg)
    cameras = open_real_cameras(real)
    try:
        robot = make_robot(cfg)
    except BaseException:
        for cam in cameras.values():
            cam.close()
        raise
    return RobotWithCameras(robot, cameras)


def observed_cameras(cfg) -> tuple[str, ...]:
    """Every camera in a driver's observations: the robot's own, then the real ones."""
    real = getattr(cfg, 'real_cameras', None)
    return tuple(cfg.cameras) + (real.names if real is not None else ())


__all__ = ['CameraError', 'RealCamerasConfig', 'RobotWithCameras', 'build_robot',
           'observed_cameras', 'open_real_cameras', 'parse_camera_spec']
