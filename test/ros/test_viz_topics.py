"""A driver's visualization topics over real DDS: the TF tree of the arm is connected from
its base, joint names are the model's, markers sit in the base frame, camera images come."""
import mujoco
import numpy as np
from gl_probe import require_offscreen_rendering
from lifecycle_msgs.msg import Transition as LcTransition
from ros_env import Proc, executable, wait_for
from sensor_msgs.msg import Image, JointState
from test_driver_node import change, wait_until_up
from visualization_msgs.msg import Marker, MarkerArray

from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig
from realrl_driver.viz.publisher import TF_QOS, VIZ_QOS
from tf2_msgs.msg import TFMessage


def hinge_names(model_path: str) -> list[str]:
    m = mujoco.MjModel.from_xml_path(model_path)
    return [m.joint(j).name for j in range(m.njnt) if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]


def test_driver_publishes_tf_joint_states_markers_and_images(ros_node, tmp_path):
    require_offscreen_rendering()
    node = ros_node
    got = {'tf': [], 'joints': [], 'markers': [], 'image': []}
    node.create_subscription(TFMessage, '/tf', got['tf'].append, TF_QOS)
    node.create_subscription(JointState, '/arm0/joint_states', got['joints'].append, VIZ_QOS)
    node.create_subscription(MarkerArray, '/arm0/viz/markers', got['markers'].append, VIZ_QOS)
    node.create_subscription(Image, '/arm0/camera/front/image_raw', got['image'].append,
                             VIZ_QOS)
    proc = Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args',
                 '-r', '__ns:=/arm0', '-p', 'replay_wait_s:=0.0', '-p', 'control_hz:=20.0',
                 '-p', 'arm.model:=panda7', '-p', "cameras:=['front']",
                 '-p', 'image_size:=[24, 32]', '-p', 'viz_hz:=10.0'], tmp_path / 'driver.log')
    try:
        wait_until_up(node, proc)
        assert change(node, LcTransition.TRANSITION_CONFIGURE), proc.output()
        assert change(node, LcTransition.TRANSITION_ACTIVATE), proc.output()
        assert wait_for(lambda: all(len(v) >= 2 for v in got.values()), 30,
                        spin=node.spin), ({k: len(v) for k, v in got.items()}, proc.output())
    finally:
        proc.stop()

    # TF: one tree, every frame reaches arm0/base, nothing else is a root.
    parent = {}
    for t in got['tf'][-1].transforms:
        assert t.child_frame_id not in parent, f'{t.child_frame_id} has two parents'
        parent[t.child_frame_id] = t.header.frame_id
        q = t.transform.rotation
        assert abs(q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2 - 1.0) < 1e-6
    for frame in parent:
        seen, f = set(), frame
        while f in parent:
            assert f not in seen, f'TF loop through {f}'
            seen.add(f)
            f = parent[f]
        assert f == 'arm0/base', f'{frame} is rooted at {f}, not arm0/base'
    arm = ArmSimConfig(model='panda7')
    model_path = arm.model_path
    m = mujoco.MjModel.from_xml_path(model_path)
    assert len(parent) == m.nbody - 1  # every body of the model is a frame

    # Joint states: the model's hinge joints, by name, with finite values.
    js = got['joints'][-1]
    assert list(js.name) == hinge_names(model_path) and len(js.name) == 7
    assert len(js.position) == 7 and np.all(np.isfinite(js.position))

    # Markers: the target inside the workspace box, both in the base frame.
    by_ns = {mk.ns: mk for mk in got['markers'][-1].markers}
    assert set(by_ns) == {'target', 'workspace'}
    target, box = by_ns['target'], by_ns['workspace']
    assert target.type == Marker.SPHERE and box.type == Marker.CUBE
    assert target.header.frame_id == box.header.frame_id == 'arm0/base'
    p = target.pose.position
    center = np.array([box.pose.position.x, box.pose.position.y, box.pose.position.z])
    half = np.array([box.scale.x, box.scale.y, box.scale.z]) / 2
    assert np.all(np.abs(np.array([p.x, p.y, p.z]) - center) <= half + 1e-9)
    low, high = arm.workspace_low, arm.workspace_high
    assert np.allclose(center - half, low) and np.allclose(center + half, high)

    # Camera: the configured size, rgb8, not one flat colour (a rendered scene).
    img = got['image'][-1]
    assert (img.height, img.width, img.encoding) == (24, 32, 'rgb8')
    pixels = np.frombuffer(bytes(img.data), np.uint8)
    assert pixels.size == 24 * 32 * 3 and pixels.std() > 5
