"""Standard visualization topics of a driver, for rviz2 and Foxglove (a thin ROS adapter).

In the robot's namespace (topics relative to the driver node):

  joint_states (sensor_msgs/JointState)        the hinge joints, named as in the model
  viz/markers (visualization_msgs/MarkerArray) the target (sphere) and workspace bounds (box)
  camera/<name>/image_raw (sensor_msgs/Image)  each observed camera's frames
  /tf (tf2_msgs/TFMessage)                     every link, rooted at <robot_id>/base

Everything is published at most ``viz_hz`` times a second, from the control tick after the
step, and costs one scene read and a few small messages: the control loop is not delayed by
subscribers (all publishers are non-blocking), and ``viz_hz: 0`` turns it off. A topic
nobody subscribes to is not built (its publisher counts no matched subscription): a
message to no reader is dropped anyway, and sixteen drivers building them on two cores
took CPU from their own control threads (bench/fleet.py).
"""
from __future__ import annotations

from geometry_msgs.msg import TransformStamped
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from visualization_msgs.msg import Marker, MarkerArray

from realrl_common.convert import fill_image
from realrl_driver.viz.scene import RateLimiter, Scene, scene_of
from tf2_msgs.msg import TFMessage

VIZ_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_LAST)
"""Reliable keep-last: matches rviz2's and tf2's reliable subscribers and best-effort ones."""
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                    history=HistoryPolicy.KEEP_LAST)
"""As tf2_ros's TransformBroadcaster publishes /tf."""


class VizPublisher:
    """Publishes a driver's robot as standard visualization messages, rate-limited."""

    def __init__(self, node, robot_id: str, hz: float, cameras: tuple[str, ...] = ()):
        self._node, self._robot_id = node, robot_id
        self._limiter = RateLimiter(hz)
        self._joints = node.create_publisher(JointState, 'joint_states', VIZ_QOS)
        self._tf = node.create_publisher(TFMessage, '/tf', TF_QOS)
        self._markers = node.create_publisher(MarkerArray, 'viz/markers', VIZ_QOS)
        self._images = {cam: node.create_publisher(Image, f'camera/{cam}/image_raw', VIZ_QOS)
                        for cam in cameras}

    def destroy(self) -> None:
        """Removes the publishers (the driver's cleanup)."""
        for pub in (self._joints, self._tf, self._markers, *self._images.values()):
            self._node.destroy_publisher(pub)
        self._images = {}

    def maybe_publish(self, now: float, robot, images: dict | None, stamp) -> bool:
        """Publishes the robot's scene and ``images`` if the rate allows; returns whether."""
        if not self._limiter.due(now):
            return False
        wanted = [(pub, make) for pub, make in ((self._joints, joint_state_msg),
                                                (self._tf, tf_msg),
                                                (self._markers, marker_msg))
                  if pub.get_subscription_count() > 0]
        scene = scene_of(robot, self._robot_id) if wanted else None
        if scene is not None:
            for pub, make in wanted:
                pub.publish(make(scene, stamp))
        for cam, frame in (images or {}).items():
            pub = self._images.get(cam)
            if pub is not None and pub.get_subscription_count() > 0:
                img = Image()
                fill_image(img, frame, f'{self._robot_id}/{cam}')
                img.header.stamp = stamp
                pub.publish(img)
        return True


def joint_state_msg(scene: Scene, stamp) -> JointState:
    """The scene's joints as a JointState."""
    msg = JointState(name=list(scene.joint_names),
                     position=[float(x) for x in scene.joint_positions],
                     velocity=[float(x) for x in scene.joint_velocities])
    msg.header.stamp = stamp
    return msg


def tf_msg(scene: Scene, stamp) -> TFMessage:
    """Every frame of the scene, parent to child."""
    out = []
    for f in scene.frames:
        t = TransformStamped()
        t.header.stamp, t.header.frame_id, t.child_frame_id = stamp, f.parent, f.child
        t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (
            f.translation)
        r = t.transform.rotation
        r.x, r.y, r.z, r.w = f.rotation_xyzw
        out.append(t)
    return TFMessage(transforms=out)


def marker_msg(scene: Scene, stamp) -> MarkerArray:
    """The target as a green sphere, the workspace as a translucent box, in the base frame."""
    markers = []
    if scene.target is not None:
        m = _marker(scene, stamp, 'target', 0, Marker.SPHERE, (0.1, 0.8, 0.2, 0.9))
        m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in scene.target)
        m.scale.x = m.scale.y = m.scale.z = 0.04
        markers.append(m)
    if scene.workspace is not None:
        low, high = scene.workspace
        m = _marker(scene, stamp, 'workspace', 0, Marker.CUBE, (0.2, 0.4, 1.0, 0.15))
        center, size = (low + high) / 2.0, high - low
        m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in center)
        m.scale.x, m.scale.y, m.scale.z = (float(v) for v in size)
        markers.append(m)
    return MarkerArray(markers=markers)


def _marker(scene: Scene, stamp, ns: str, mid: int, kind: int, rgba) -> Marker:
    m = Marker(ns=ns, id=mid, type=kind, action=Marker.ADD, frame_locked=True)
    m.header.stamp, m.header.frame_id = stamp, scene.base_frame
    m.pose.orientation.w = 1.0
    m.color.r, m.color.g, m.color.b, m.color.a = rgba
    return m
