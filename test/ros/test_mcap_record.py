"""`record_node` writes MCAP that an independent reader (mcap-ros2-support's decoder, which
knows nothing of our packages) opens: the expected topics, every message, decoded fields."""
import numpy as np
from geometry_msgs.msg import TransformStamped
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_env import Proc, executable, wait_for
from sensor_msgs.msg import Image, JointState

from realrl_common.convert import fill_image
from realrl_interfaces.msg import EpisodeResult
from tf2_msgs.msg import TFMessage

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)
COUNTS = {'/arm0/joint_states': 30, '/tf': 30, '/arm0/camera/front/image_raw': 5,
          '/arm0/episode': 7}


def messages(i: int) -> dict:
    js = JointState(name=['j1', 'j2'], position=[0.1 * i, -0.1 * i])
    tf = TFMessage(transforms=[TransformStamped(child_frame_id='arm0/link1')])
    tf.transforms[0].header.frame_id = 'arm0/base'
    tf.transforms[0].transform.translation.z = float(i)
    tf.transforms[0].transform.rotation.w = 1.0
    img = Image()
    fill_image(img, np.full((6, 8, 3), i, np.uint8), 'arm0/front')
    ep = EpisodeResult(robot_id='arm0', episode_id=i, steps=50, episode_return=-float(i),
                       success=i % 2 == 0)
    return {'/arm0/joint_states': js, '/tf': tf, '/arm0/camera/front/image_raw': img,
            '/arm0/episode': ep}


def test_recorded_mcap_opens_in_an_independent_reader(ros_node, tmp_path):
    node = ros_node
    types = {'/arm0/joint_states': JointState, '/tf': TFMessage,
             '/arm0/camera/front/image_raw': Image, '/arm0/episode': EpisodeResult}
    pubs = {t: node.create_publisher(cls, t, RELIABLE) for t, cls in types.items()}
    out = tmp_path / 'episodes.mcap'
    topics = [a for t in COUNTS for a in ('--topic', t)]
    proc = Proc([executable('realrl_bringup', 'record_node'), str(out), *topics],
                tmp_path / 'record.log')
    try:
        assert wait_for(lambda: all(p.get_subscription_count() for p in pubs.values()), 30,
                        spin=node.spin), proc.output()
        node.spin(0.5)  # the recorder's side of the match settles too
        for i in range(max(COUNTS.values())):
            for topic, msg in messages(i).items():
                if i < COUNTS[topic]:
                    pubs[topic].publish(msg)
            node.spin(0.01)
        node.spin(2.0)
    finally:
        assert proc.stop(timeout=15) in (0, -2), proc.output()
    assert 'wrote' in proc.output(), proc.output()

    with open(out, 'rb') as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        got = {t: [] for t in COUNTS}
        for _schema, channel, _message, decoded in reader.iter_decoded_messages():
            got[channel.topic].append(decoded)
    schemas = {c.topic: summary.schemas[c.schema_id] for c in summary.channels.values()}
    assert set(schemas) == set(COUNTS)
    assert schemas['/tf'].name == 'tf2_msgs/msg/TFMessage'
    assert schemas['/arm0/episode'].encoding == 'ros2msg'
    assert b'MSG: std_msgs/Header' in schemas['/arm0/episode'].data  # dependencies embedded

    assert {t: len(v) for t, v in got.items()} == COUNTS
    assert [ep.episode_id for ep in got['/arm0/episode']] == list(range(7))
    assert [ep.success for ep in got['/arm0/episode']] == [i % 2 == 0 for i in range(7)]
    assert got['/arm0/episode'][3].episode_return == -3.0
    assert list(got['/arm0/joint_states'][4].name) == ['j1', 'j2']
    assert abs(got['/arm0/joint_states'][4].position[0] - 0.4) < 1e-12
    tf = got['/tf'][9].transforms[0]
    assert (tf.header.frame_id, tf.child_frame_id, tf.transform.translation.z) == (
        'arm0/base', 'arm0/link1', 9.0)
    img = got['/arm0/camera/front/image_raw'][2]
    assert (img.height, img.width, img.encoding) == (6, 8, 'rgb8')
    assert set(bytes(img.data)) == {2}
