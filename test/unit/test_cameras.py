"""Real cameras through OpenCV on video files this test writes, and RealSense's errors."""
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from video_source import H, W, frame_number, write_video

from realrl_driver.cameras.base import CameraError
from realrl_driver.cameras.factory import open_camera
from realrl_driver.cameras.opencv import OpenCVCamera
from realrl_driver.cameras.realsense import RealSenseCamera


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)
    return predicate()


def test_frames_come_out_rgb_at_the_requested_size(tmp_path):
    cam = OpenCVCamera(write_video(tmp_path / 'clip.avi', 30), 'wrist', fps=30)
    cam.open()
    try:
        img = cam.read(64, 48)
        assert img.shape == (48, 64, 3) and img.dtype == np.uint8
        # the file holds BGR (200, 40, red); RGB puts red first and blue last
        assert abs(float(img[..., 2].mean()) - 200) < 6 and abs(float(img[..., 1].mean()) - 40) < 6
        native = cam.read(W, H)
        assert native.shape == (H, W, 3)
        assert cam.read(320, 240).shape == (240, 320, 3)  # enlarging works too
    finally:
        cam.close()


def test_the_newest_frame_wins_and_old_ones_are_not_queued(tmp_path):
    cam = OpenCVCamera(write_video(tmp_path / 'clip.avi', 60), 'front', fps=100, max_age_s=5.0)
    cam.open()
    try:
        first = frame_number(cam.read(W, H))
        assert wait_for(lambda: cam.frames >= 20)
        later = frame_number(cam.read(W, H))
        # the reader gets the frame the grabber took last, not the next one in line
        assert later >= first + 15, (first, later)
        again = frame_number(cam.read(W, H))
        assert again >= later  # never an older frame
    finally:
        cam.close()


def test_stopped_frames_are_an_error_naming_the_camera_and_age(tmp_path):
    path = write_video(tmp_path / 'short.avi', 5)
    cam = OpenCVCamera(path, 'wrist', fps=50, max_age_s=0.2)
    cam.open()
    try:
        assert wait_for(lambda: 'end of' in cam._problem)
        time.sleep(0.3)
        with pytest.raises(CameraError) as err:
            cam.read(W, H)
        msg = str(err.value)
        assert "'wrist'" in msg and path in msg and 's old' in msg and '5 frames came' in msg
        assert cam.latest() is not None  # the last frame is still there, only too old
    finally:
        cam.close()


def test_a_looping_file_keeps_delivering(tmp_path):
    cam = open_camera('demo', write_video(tmp_path / 'loop.avi', 4), fps=50, max_age_s=0.3,
                      loop_files=True)
    try:
        assert wait_for(lambda: cam.frames >= 12)  # three passes over 4 frames
        cam.read(W, H)  # fresh, no error
    finally:
        cam.close()


def test_an_image_sequence_is_a_camera(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f'img_{i:03d}.png'),
                    np.full((H, W, 3), (0, 0, 4 * i), np.uint8))
    cam = OpenCVCamera(str(tmp_path / 'img_%03d.png'), 'seq', fps=30, max_age_s=5.0)
    cam.open()
    try:
        assert cam.read(W, H)[..., 0].max() <= 8  # exact PNG values, red first
    finally:
        cam.close()


def test_missing_sources_are_clear_errors(tmp_path):
    with pytest.raises(CameraError, match=r"no such video file .*nothing\.avi"):
        OpenCVCamera(str(tmp_path / 'nothing.avi'), 'wrist').open()
    with pytest.raises(CameraError) as err:
        OpenCVCamera('/dev/video7', 'wrist').open()
    assert '/dev/video7' in str(err.value) and 'video devices here' in str(err.value)
    with pytest.raises(CameraError, match=r'/dev/video3'):
        OpenCVCamera('3', 'side').open()  # an index is the device of that number
    (tmp_path / 'broken.avi').write_bytes(b'not a video at all')
    with pytest.raises(CameraError, match=r"'broken'"):
        OpenCVCamera(str(tmp_path / 'broken.avi'), 'broken', open_timeout_s=1.0).open()


def test_realsense_without_a_device_says_what_was_found_and_the_fix():
    with pytest.raises(CameraError) as err:
        RealSenseCamera('', 'front').open()
    msg = str(err.value)
    assert "'front'" in msg
    try:
        import pyrealsense2  # noqa: F401
        loads = True
    except ImportError:
        loads = False
    if loads:  # the real SDK ran and found no camera
        assert 'no Intel RealSense found' in msg and 'udev' in msg
    else:  # not installed, or installed without the USB library it links
        assert 'pip install pyrealsense2' in msg or 'apt-get install libusb' in msg


def test_realsense_module_absent_is_a_clear_error():
    """The same call in a process where pyrealsense2 cannot be imported at all."""
    code = ('import sys; sys.modules["pyrealsense2"] = None\n'
            'from realrl_driver.cameras.realsense import RealSenseCamera\n'
            'from realrl_driver.cameras.base import CameraError\n'
            'try:\n    RealSenseCamera("0123", "front").open()\n'
            'except CameraError as e:\n    print(e)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         env={'PYTHONPATH': ':'.join(sys.path)}, timeout=60)
    assert 'not installed' in out.stdout and 'pip install pyrealsense2==' in out.stdout, out
