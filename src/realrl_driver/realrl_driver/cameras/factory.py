"""One camera for a source spec: RealSense or OpenCV (``real_cameras.sources``, camera_node)."""
from __future__ import annotations

from realrl_driver.cameras.base import GrabbingCamera
from realrl_driver.cameras.opencv import OpenCVCamera


def open_camera(name: str, source: str, fps: float = 30.0, max_age_s: float = 0.5,
                open_timeout_s: float = 5.0, loop_files: bool = False) -> GrabbingCamera:
    """An opened camera for a source spec: 'realsense' or 'realsense:<serial>' for an Intel
    RealSense, anything else for OpenCV (index, /dev path, URL, file)."""
    if source == 'realsense' or source.startswith('realsense:'):
        from realrl_driver.cameras.realsense import RealSenseCamera
        cam = RealSenseCamera(source.partition(':')[2], name, fps=fps, max_age_s=max_age_s,
                              open_timeout_s=open_timeout_s)
    else:
        cam = OpenCVCamera(source, name, fps, max_age_s, open_timeout_s, loop=loop_files)
    cam.open()
    return cam
