"""A real video source for camera tests (this machine has no /dev/video*): MJPG .avi files
written with OpenCV, whose frames say which frame they are."""
import cv2
import numpy as np

W, H = 160, 120
"""Frame width and height of the written videos."""


def write_video(path, frames: int, fps: float = 30.0) -> str:
    """An MJPG .avi whose frame i is uniform: blue 200, green 40, red 4 * i (BGR order)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, (W, H))
    assert writer.isOpened(), 'OpenCV cannot write MJPG .avi files here'
    for i in range(frames):
        writer.write(np.full((H, W, 3), (200, 40, 4 * i), dtype=np.uint8))
    writer.release()
    return str(path)


def frame_number(rgb: np.ndarray) -> int:
    """Which frame of write_video an RGB image (of any size) shows."""
    return int(round(float(rgb[..., 0].mean()) / 4))
