"""The bridge node over real DDS and a real Zenoh link: two ROS graphs on different DDS
domains (a site's and the cloud's) see each other's allow-listed topics, and nothing else;
a reliable transition crosses once however often the driver re-sends it, and the replay
node's ack comes back to the site; the replay node's sender_state service answers the
site's driver across the link."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest
import yaml
from ros_env import Proc, executable, next_domain_id, wait_for
from std_msgs.msg import String

from realrl_common.qos import COMMAND_QOS, DATA_QOS
from realrl_interfaces.msg import Transition, TransitionAck

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'unit' / 'bridge'))
from _zenoh_fixtures import tls_router  # noqa: E402

from realrl_bridge import certs, link  # noqa: E402

TOPICS = {'transition': {'type': 'realrl_interfaces/msg/Transition', 'direction': 'up',
                         'reliable': True, 'compression': 'zlib'},
          'cmd': {'type': 'std_msgs/msg/String', 'direction': 'down', 'priority': 'real_time',
                  'qos': 'command'}}
SERVICES = {'sender_state': {'type': 'realrl_interfaces/srv/SenderState',
                            'path': '/replay/sender_state', 'timeout_s': 3.0}}


def two_domains() -> tuple[int, int]:
    """Two DDS domains no other test of this session uses: a site's and the cloud's."""
    return next_domain_id(), next_domain_id()


def params_file(path: Path, side: str, folder, name: str, endpoint: str) -> Path:
    files = folder.site(name)
    path.write_text(yaml.safe_dump({'bridge': {'ros__parameters': {
        'side': side, 'connect': endpoint, 'robot_ids': ['arm0'],
        'tls': {'ca': str(folder.ca.cert), 'cert': str(files.cert), 'key': str(files.key)},
        'topics': TOPICS, 'services': SERVICES}}}))
    return path


class Graph:
    """An rclpy context and node on one DDS domain, in this process."""

    def __init__(self, domain: int, name: str):
        import rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def close(self):
        import rclpy
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.mark.ros
def test_site_and_cloud_graphs_exchange_only_allowed_topics(tmp_path):
    site_domain, cloud_domain = two_domains()
    folder = certs.make_folder(tmp_path / 'certs', ['lab_a', 'cloud'])
    router = contextlib.ExitStack()  # closed last, in the finally
    _, endpoint = router.enter_context(tls_router(
        folder, sites=(link.Site('lab_a', ('arm0',)),), cloud_names=('cloud',)))
    procs, graphs = [], []
    try:
        exe = executable('realrl_bridge', 'bridge')
        for side, name, domain in (('edge', 'lab_a', site_domain),
                                   ('cloud', 'cloud', cloud_domain)):
            env = {**os.environ, 'ROS_DOMAIN_ID': str(domain),
                   'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
            params = params_file(tmp_path / f'{side}.yaml', side, folder, name, endpoint)
            procs.append(Proc([exe, '--ros-args', '--params-file', str(params)],
                              tmp_path / f'{side}.log', env=env))
        site, cloud = Graph(site_domain, 'site_probe'), Graph(cloud_domain, 'cloud_probe')
        graphs += [site, cloud]
        up, down, leaked, acks = [], [], [], []
        cloud.node.create_subscription(Transition, '/arm0/transition', up.append, DATA_QOS)
        site.node.create_subscription(TransitionAck, '/replay/ack', acks.append, DATA_QOS)
        replay_ack = cloud.node.create_publisher(TransitionAck, '/replay/ack', DATA_QOS)
        cloud.node.create_subscription(String, '/arm0/chatter', leaked.append, DATA_QOS)
        site.node.create_subscription(String, '/arm0/cmd', down.append, COMMAND_QOS)
        to_cloud = site.node.create_publisher(Transition, '/arm0/transition', DATA_QOS)
        not_listed = site.node.create_publisher(String, '/arm0/chatter', DATA_QOS)
        to_site = cloud.node.create_publisher(String, '/arm0/cmd', COMMAND_QOS)

        def spin_both(step):
            site.executor.spin_once(timeout_sec=step / 2)
            cloud.executor.spin_once(timeout_sec=step / 2)

        def exchange():
            to_cloud.publish(Transition(robot_id='arm0', seq=41, episode_id=3))
            not_listed.publish(String(data='stays on the site'))
            to_site.publish(String(data='hold'))
            return bool(up) and bool(down)
        assert wait_for(exchange, 60, step=0.2, spin=spin_both), \
            procs[0].output()[-2000:] + procs[1].output()[-2000:]
        assert (up[0].robot_id, up[0].seq, up[0].episode_id) == ('arm0', 41, 3)
        assert down[0].data == 'hold'

        def acked():
            to_cloud.publish(Transition(robot_id='arm0', seq=41, episode_id=3))  # a re-send
            replay_ack.publish(TransitionAck(robot_id='arm0', committed_seq=41, stored=41))
            replay_ack.publish(TransitionAck(robot_id='arm7', committed_seq=9, stored=9))
            return bool(acks)
        assert wait_for(acked, 30, step=0.2, spin=spin_both)
        assert (acks[0].robot_id, acks[0].committed_seq) == ('arm0', 41)
        for _ in range(10):
            spin_both(0.1)
        assert len(up) == 1     # sent many times by the 'driver', delivered once
        assert {a.robot_id for a in acks} == {'arm0'}   # arm7 is not this bridge's robot
        assert leaked == []     # /arm0/chatter is not allow-listed: it never crossed

        from realrl_interfaces.srv import SenderState

        def answer(request, response):
            response.known, response.committed_seq = True, 41
            response.last_episode_id = 3
            return response
        cloud.node.create_service(SenderState, '/replay/sender_state', answer)
        client = site.node.create_client(SenderState, '/replay/sender_state')
        assert wait_for(client.service_is_ready, 30, step=0.2, spin=spin_both)

        def ask(robot_id):
            future = client.call_async(SenderState.Request(robot_id=robot_id))
            assert wait_for(future.done, 30, step=0.1, spin=spin_both)
            return future.result()
        got = ask('arm0')
        assert (got.known, got.committed_seq, got.last_episode_id) == (True, 41, 3)
        assert not ask('arm9').known     # not this site's robot: never forwarded
        for p in procs:
            assert p.p.poll() is None
    finally:
        for g in graphs:
            g.close()
        codes = [p.stop(timeout=15) for p in procs]   # a bridge joins its Zenoh threads first
        router.close()
    assert all(c in (0, -2) for c in codes), [(c, p.output()[-6000:]) for c, p in
                                              zip(codes, procs) if c not in (0, -2)]


@pytest.mark.ros
def test_observation_images_cross_as_png_exactly_and_as_smaller_jpeg():
    """What the bridge node does to a topic with compression png/jpeg, on real messages."""
    import numpy as np
    from rclpy.serialization import deserialize_message, serialize_message
    from realrl_bridge.payload_codec import decode_images, encode_images
    from sensor_msgs.msg import Image

    from realrl_interfaces.msg import Observation
    y, x = np.mgrid[0:96, 0:128]
    grain = np.random.default_rng(0).integers(0, 24, (96, 128, 3))   # texture, sensor noise
    frame = (np.stack([x * 2, y * 2, (x + y) % 200], -1) + grain).astype(np.uint8)
    obs = Observation(robot_id='arm0', step=4, state=[0.5, -0.5], images=[Image(
        height=96, width=128, encoding='rgb8', step=128 * 3, data=frame.tobytes())])
    raw = serialize_message(obs)
    sizes = {}
    for codec in ('png', 'jpeg'):
        msg = deserialize_message(raw, Observation)
        encode_images(msg, codec, 80)
        wire = serialize_message(msg)
        sizes[codec] = len(wire)
        back = deserialize_message(wire, Observation)
        assert decode_images(back) == 1
        pixels = np.frombuffer(bytes(back.images[0].data), np.uint8).reshape(96, 128, 3)
        error = np.abs(pixels.astype(int) - frame).mean()
        assert error == 0 if codec == 'png' else error < 10
        assert (back.step, list(back.state), back.images[0].encoding) == (4, [0.5, -0.5], 'rgb8')
    assert sizes['jpeg'] < sizes['png'] < len(raw)
