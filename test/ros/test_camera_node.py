"""Real cameras over real DDS: the camera node, and a driver with `real_cameras`. The
camera is OpenCV reading a video file this test writes."""
import numpy as np
from ros_env import Proc, executable, wait_for
from sensor_msgs.msg import Image
from video_source import write_video

from realrl_common.convert import image_array, to_f32
from realrl_common.lifecycle import bring_up
from realrl_common.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from realrl_interfaces.msg import Action, Observation, RobotDescription


def test_camera_node_publishes_rgb_frames_at_the_asked_size(ros_node, tmp_path):
    clip = write_video(tmp_path / 'clip.avi', 10)
    proc = Proc([executable('realrl_driver', 'camera_node'), '--ros-args', '-r', '__ns:=/cams',
                 '-p', 'name:=desk', '-p', f'source:={clip}', '-p', 'loop_files:=true',
                 '-p', 'rate_hz:=20.0', '-p', 'width:=64', '-p', 'height:=48'],
                tmp_path / 'camera.log')
    try:
        images = []
        ros_node.create_subscription(Image, '/cams/desk/image', images.append, SENSOR_QOS)
        assert wait_for(lambda: len(images) >= 5, 20, spin=ros_node.spin), proc.output()
        img = images[-1]
        assert (img.encoding, img.height, img.width) == ('rgb8', 48, 64)
        assert img.header.frame_id == 'desk'
        assert abs(float(image_array(img)[..., 2].mean()) - 200) < 6  # blue, in RGB order
        assert img.header.stamp.sec > 0  # the capture time
    finally:
        proc.stop()


def test_driver_observations_carry_the_real_camera(ros_node, tmp_path):
    node = ros_node
    clip = write_video(tmp_path / 'clip.avi', 10)
    driver = Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args',
                   '-r', '__ns:=/arm0', '-p', 'replay_wait_s:=0.0', '-p', 'cameras:=[front]',
                   '-p', 'image_size:=[48, 64]', '-p', f'real_cameras.sources:=[desk={clip}]',
                   '-p', 'real_cameras.loop_files:=true'], tmp_path / 'driver.log')
    try:
        observations, descs = [], []
        node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
        node.create_subscription(RobotDescription, '/arm0/description', descs.append, LATCHED_QOS)
        assert bring_up(node, '/arm0/driver', node.spin,
                        alive=lambda: driver.p.poll() is None) == '', driver.output()
        assert wait_for(lambda: observations and descs, 10, spin=node.spin), driver.output()
        assert list(descs[-1].camera_names) == ['front', 'desk']
        assert (descs[-1].image_height, descs[-1].image_width) == (48, 64)
        frames = {img.header.frame_id: image_array(img) for img in observations[-1].images}
        assert set(frames) == {'front', 'desk'}
        assert frames['desk'].shape == (48, 64, 3)
        assert abs(float(frames['desk'][..., 2].mean()) - 200) < 6
        assert not np.array_equal(frames['front'], frames['desk'])
    finally:
        driver.stop()


def test_a_missing_real_camera_fails_configure_naming_it(ros_node, tmp_path):
    driver = Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args',
                   '-r', '__ns:=/arm0', '-p', 'replay_wait_s:=0.0',
                   '-p', 'real_cameras.sources:=[wrist=/dev/video9]'], tmp_path / 'driver.log')
    try:
        why = bring_up(ros_node, '/arm0/driver', ros_node.spin, timeout=20,
                       alive=lambda: driver.p.poll() is None)
        assert why != ''
        assert wait_for(lambda: "camera 'wrist'" in driver.output(), 5), driver.output()
        assert '/dev/video9' in driver.output() and 'video devices here' in driver.output()
    finally:
        driver.stop()


def test_a_camera_that_stops_holds_the_robot_without_ending_the_driver(ros_node, tmp_path):
    node = ros_node
    clip = write_video(tmp_path / 'short.avi', 30)  # one second at 30 fps
    driver = Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args',
                   '-r', '__ns:=/arm0', '-p', 'replay_wait_s:=0.0', '-p', 'control_hz:=20.0',
                   '-p', f'real_cameras.sources:=[desk={clip}]',
                   '-p', 'real_cameras.max_frame_age_s:=0.2'], tmp_path / 'driver.log')
    try:
        observations = []
        node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
        actions = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)
        assert bring_up(node, '/arm0/driver', node.spin,
                        alive=lambda: driver.p.poll() is None) == '', driver.output()
        assert wait_for(lambda: observations, 10, spin=node.spin), driver.output()
        node.spin(1.5)  # the file ends: its newest frame ages
        for _ in range(10):
            obs = observations[-1]
            actions.publish(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                                   action=to_f32([1.0, 0.0, 0.0])))
            node.spin(0.1)
        assert wait_for(lambda: "robot holds: camera 'desk'" in driver.output(), 5), \
            driver.output()
        assert driver.p.poll() is None  # still running, holding
        assert all(o.step == 0 for o in observations)  # never moved on a stale picture
    finally:
        driver.stop()
