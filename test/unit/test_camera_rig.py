"""Real cameras attached to a robot: config checks, frames in observations, stale-frame
safety. The robot is the real MuJoCo arm; the camera is OpenCV on a video file."""
import time

import numpy as np
import pytest
from video_source import H, W, write_video

from realrl_common.config import ConfigError, build_config
from realrl_driver.cameras.base import CameraError
from realrl_driver.cameras.opencv import OpenCVCamera
from realrl_driver.cameras.rig import RealCamerasConfig, RobotWithCameras, build_robot
from realrl_driver.core.driver_config import DriverNodeConfig
from realrl_driver.core.episode_loop import EpisodeLoop, LoopConfig
from realrl_driver.robots.mujoco_arm.sim import MujocoArmSim


class Arm(MujocoArmSim):
    """The simulated arm with the hold every driver's robot has."""

    def hold(self):
        self.data.ctrl[:] = self.data.qpos


def test_config_names_the_field_and_the_fix():
    cfg = build_config(DriverNodeConfig, {'cameras': ['front'], 'real_cameras': {
        'sources': ['wrist=/dev/video0', 'top=realsense:0123456789', 'clip=/tmp/a.avi']}})
    assert cfg.real_cameras.names == ('wrist', 'top', 'clip')
    bad = [({'sources': ['/dev/video0']},
            "real_cameras: sources: '/dev/video0' must read 'name=source'"),
           ({'sources': ['a=0', 'a=1']}, "camera names must differ; ['a'] repeat"),
           ({'sources': ['my cam=0']}, 'must be letters, digits and _'),
           ({'sources': ['a=realsense:12-3']}, 'a RealSense serial is letters and digits'),
           ({'fps': 0}, 'real_cameras: fps must be > 0'),
           ({'sources': 'a=0'}, 'real_cameras.sources: expected a list of str')]
    for real, message in bad:
        with pytest.raises(ConfigError) as err:
            build_config(DriverNodeConfig, {'real_cameras': real})
        assert message in str(err.value), str(err.value)
    with pytest.raises(ConfigError, match=r"\['front'\] already name cameras of the robot"):
        build_config(DriverNodeConfig, {'cameras': ['front'],
                                        'real_cameras': {'sources': ['front=0']}})


def test_observations_carry_real_and_simulated_frames(tmp_path):
    cam = OpenCVCamera(write_video(tmp_path / 'clip.avi', 8), 'desk', fps=50, max_age_s=2.0,
                       loop=True)
    cam.open()
    robot = RobotWithCameras(Arm(), {'desk': cam})
    try:
        assert robot.camera_names[-1] == 'desk' and 'front' in robot.camera_names
        assert 'cameras' in robot.capabilities and robot.state_dim == robot.inner.state_dim
        loop = EpisodeLoop(LoopConfig(cameras=('front', 'desk'), image_size=(48, 64)), robot)
        obs = loop.tick(0.0).observation
        desk, front = obs.images['desk'], obs.images['front']
        assert desk.shape == front.shape == (48, 64, 3)
        assert abs(float(desk[..., 2].mean()) - 200) < 6  # the video's blue, in RGB order
        assert not np.allclose(front, desk)  # the simulated camera still renders the scene
        loop.on_action(np.array([1.0, 0, 0], np.float32), obs.episode_id, obs.step)
        loop.on_label(obs.episode_id, obs.step, 0.0, False)
        assert loop.tick(0.1).observation.step == 1
    finally:
        robot.close()
    assert cam._thread is None  # closing the robot stopped the camera's thread


def test_a_stalled_camera_stops_the_robot_before_it_moves(tmp_path):
    cam = OpenCVCamera(write_video(tmp_path / 'short.avi', 3), 'desk', fps=50, max_age_s=0.2)
    cam.open()
    arm = Arm()
    robot = RobotWithCameras(arm, {'desk': cam})
    try:
        loop = EpisodeLoop(LoopConfig(cameras=('desk',), image_size=(H, W)), robot)
        obs = loop.tick(0.0).observation
        time.sleep(0.4)  # the file ended: no frame younger than max_age_s
        loop.on_action(np.array([1.0, 0, 0], np.float32), obs.episode_id, obs.step)
        loop.on_label(obs.episode_id, obs.step, 0.0, False)
        qpos = arm.data.qpos.copy()
        with pytest.raises(CameraError, match=r"camera 'desk' .* old"):
            loop.tick(0.1)
        assert np.array_equal(arm.data.qpos, qpos)  # not commanded, not stepped
        assert loop.obs.step == 0 and loop.counters['steps'] == 0
    finally:
        robot.close()


def test_build_robot_opens_cameras_first_and_only_when_asked(tmp_path):
    made = []

    def make(cfg):
        made.append(cfg)
        return Arm()

    plain = build_robot(make, DriverNodeConfig())
    assert isinstance(plain, Arm)  # no real cameras: the robot itself
    missing = DriverNodeConfig(real_cameras=RealCamerasConfig(
        sources=(f'desk={tmp_path / "none.avi"}',)))
    with pytest.raises(CameraError, match='no such video file'):
        build_robot(make, missing)
    assert len(made) == 1  # the robot was never built for the failed config
    ok = DriverNodeConfig(real_cameras=RealCamerasConfig(
        sources=(f'desk={write_video(tmp_path / "c.avi", 4)}',), loop_files=True))
    robot = build_robot(make, ok)
    try:
        assert isinstance(robot, RobotWithCameras)
        assert robot.render('desk', 32, 24).shape == (24, 32, 3)
    finally:
        robot.close()
