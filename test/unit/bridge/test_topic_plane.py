"""Allow-listed topics over real Zenoh sessions: direction, priority, congestion, ACL."""
from __future__ import annotations

import threading
import time

import pytest
import zenoh
from _zenoh_fixtures import site_edge, tls_router
from realrl_bridge.node_config import BridgeNodeConfig, TopicRoute

from realrl_bridge import certs
from realrl_common.config import ConfigError, build_config

ROUTES = {
    'transition': TopicRoute(type='realrl_interfaces/msg/Transition', direction='up'),
    'status': TopicRoute(type='realrl_interfaces/msg/DriverStatus', direction='up',
                         priority='data_low', congestion='drop'),
    'estop': TopicRoute(type='std_msgs/msg/Bool', direction='down', priority='real_time',
                        express=True),
}


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return certs.make_folder(tmp_path_factory.mktemp('certs'), ['lab_a', 'lab_b', 'cloud'])


class Got:
    def __init__(self, width=3):
        self.items, self.headers, self.cv = [], [], threading.Condition()
        self.width = width

    def __call__(self, *item):
        with self.cv:
            self.items.append(item[:self.width])   # a plane's (robot_id, topic, payload) ...
            self.headers.append(item[self.width:])  # ... and its header apart
            self.cv.notify_all()

    def wait(self, item, timeout=10.0):
        with self.cv:
            return self.cv.wait_for(lambda: item in self.items, timeout)


def send_until(plane, rid, topic, payload, got, item, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        plane.send(rid, topic, payload)
        if got.wait(item, 0.2):
            return True
    return False


def test_topics_cross_in_their_direction_with_their_priority(folder):
    from realrl_bridge.topic_plane import TopicPlane
    with tls_router(folder, cloud_names=('cloud',)) as (router, endpoint), \
            site_edge(endpoint, folder, 'lab_a') as e, site_edge(endpoint, folder, 'cloud') as c:
        at_edge, at_cloud, raw = Got(), Got(), Got(width=4)
        edge_plane = TopicPlane(e, 'edge', ('arm0',), ROUTES, at_edge)
        cloud_plane = TopicPlane(c, 'cloud', ('arm0', 'arm1'), ROUTES, at_cloud)
        router.declare_subscriber('realrl/robot/*/topic/*', lambda s: raw(
            str(s.key_expr), s.priority, s.congestion_control, s.express))
        try:
            assert sorted(edge_plane.outgoing()) == [('arm0', 'status'), ('arm0', 'transition')]
            assert sorted(cloud_plane.outgoing()) == [('arm0', 'estop'), ('arm1', 'estop')]
            assert send_until(edge_plane, 'arm0', 'transition', b'\x00\x01cdr', at_cloud,
                              ('arm0', 'transition', b'\x00\x01cdr'))
            assert send_until(edge_plane, 'arm0', 'status', b'st', at_cloud,
                              ('arm0', 'status', b'st'))
            assert send_until(cloud_plane, 'arm0', 'estop', b'stop', at_edge,
                              ('arm0', 'estop', b'stop'))
            assert raw.wait(('realrl/robot/arm0/topic/transition', zenoh.Priority.DATA,
                             zenoh.CongestionControl.BLOCK, False))
            assert raw.wait(('realrl/robot/arm0/topic/status', zenoh.Priority.DATA_LOW,
                             zenoh.CongestionControl.DROP, False))
            assert raw.wait(('realrl/robot/arm0/topic/estop', zenoh.Priority.REAL_TIME,
                             zenoh.CongestionControl.BLOCK, True))
            with pytest.raises(ValueError, match='not an outgoing topic'):
                edge_plane.send('arm0', 'estop', b'x')      # 'down' is not the edge's to send
            with pytest.raises(ValueError, match='not an outgoing topic'):
                edge_plane.send('arm1', 'transition', b'x')  # not one of its robots
        finally:
            edge_plane.close()
            cloud_plane.close()


def test_an_edge_bridging_another_sites_robot_is_refused(folder):
    from realrl_bridge.topic_plane import TopicPlane
    with tls_router(folder, cloud_names=('cloud',)) as (router, endpoint), \
            site_edge(endpoint, folder, 'lab_a') as e, site_edge(endpoint, folder, 'cloud') as c:
        at_cloud = Got()
        rogue = TopicPlane(e, 'edge', ('arm0', 'arm1'), ROUTES, Got())   # arm1 is lab_b's
        cloud_plane = TopicPlane(c, 'cloud', ('arm0', 'arm1'), ROUTES, at_cloud)
        try:
            for _ in range(3):
                rogue.send('arm1', 'transition', b'forged')
            assert send_until(rogue, 'arm0', 'transition', b'own', at_cloud,
                              ('arm0', 'transition', b'own'))
            time.sleep(0.3)
            assert ('arm1', 'transition', b'forged') not in at_cloud.items
        finally:
            rogue.close()
            cloud_plane.close()


def test_bridge_config_names_the_bad_field():
    good = {'connect': 'tls/127.0.0.1:7447', 'robot_ids': ['arm0'],
            'tls': {'ca': 'ca.pem', 'cert': 'a.pem', 'key': 'a.key'},
            'topics': {'transition': {'type': 'realrl_interfaces/msg/Transition',
                                      'direction': 'up'}}}
    cfg = build_config(BridgeNodeConfig, good)
    assert cfg.routes()['transition'].priority == 'data'
    for change, field in [({'side': 'middle'}, 'side'), ({'connect': 'tcp/h:1'}, 'connect'),
                          ({'robot_ids': []}, 'robot_ids'), ({'topics': {}}, 'topics'),
                          ({'tls': {'ca': 'x'}}, 'tls.cert'),
                          ({'outbox_limit': 0}, 'outbox_limit'),
                          ({'ack_topic': 'replay/ack'}, 'ack_topic'),
                          ({'nice': -21}, 'nice must be in -20..19'),
                          ({'services': {'s': {'type': 'a/msg/B', 'path': '/s'}}},
                           r"services.s: type must be 'package/srv/Name'"),
                          ({'services': {'s': {'type': 'a/srv/B', 'path': 's'}}},
                           'path must be absolute'),
                          ({'weights': {'max_mbit_s': -1}}, 'weights.max_mbit_s'),
                          ({'weights': {'site_mbit_s': -5}},
                           r'weights.site_mbit_s must be >= 0 \(0: unpaced\), got -5')]:
        with pytest.raises(ConfigError, match=field):
            build_config(BridgeNodeConfig, {**good, **change})
    for route, field in [({'direction': 'sideways'}, 'direction'),
                         ({'priority': 'urgent'}, 'priority'),
                         ({'congestion': 'wait'}, 'congestion'),
                         ({'type': 'Transition'}, 'type'), ({'qos': 'best'}, 'qos'),
                         ({'prio': 'data'}, "did you mean 'priority'"),
                         ({'compression': 'gzip'}, 'compression'),
                         ({'max_rate_hz': 5.0}, 'max_rate_hz drops messages'),
                         ({'reliable': True, 'direction': 'down'}, 'reliable'),
                         ({'jpeg_quality': 0}, 'jpeg_quality')]:
        topics = {'transition': {'type': 'realrl_interfaces/msg/Transition',
                                 'direction': 'up', **route}}
        with pytest.raises(ConfigError, match=field):
            build_config(BridgeNodeConfig, {**good, 'topics': topics})


def test_plane_refuses_unknown_side(folder):
    from realrl_bridge.topic_plane import TopicPlane
    with pytest.raises(ValueError, match='side'):
        TopicPlane(None, 'middle', ('arm0',), ROUTES, Got())


RELIABLE = {
    'transition': TopicRoute(type='realrl_interfaces/msg/Transition', direction='up',
                             reliable=True, compression='zlib'),
    'status': TopicRoute(type='realrl_interfaces/msg/DriverStatus', direction='up',
                         congestion='drop', max_rate_hz=2.0),
    'description': TopicRoute(type='realrl_interfaces/msg/RobotDescription', direction='up',
                              qos='latched'),
}


def test_rate_limit_compression_latched_repeats_and_acks(folder):
    from realrl_bridge.topic_plane import TopicPlane
    with tls_router(folder, cloud_names=('cloud',)) as (router, endpoint), \
            site_edge(endpoint, folder, 'lab_a') as e, site_edge(endpoint, folder, 'cloud') as c:
        at_cloud, acks = Got(), Got()
        edge_plane = TopicPlane(e, 'edge', ('arm0',), RELIABLE, Got(), on_ack=acks)
        cloud_plane = TopicPlane(c, 'cloud', ('arm0',), RELIABLE, at_cloud)
        try:
            big = bytes(range(256)) * 400
            assert send_until(edge_plane, 'arm0', 'transition', big, at_cloud,
                              ('arm0', 'transition', big))
            assert edge_plane.bytes_sent < len(big) // 10          # zlib on the wire
            sent = [edge_plane.send('arm0', 'status', b's', now=t) for t in (0.0, 0.2, 0.6)]
            assert sent == [True, False, True] and edge_plane.rate_dropped == 1
            assert send_until(edge_plane, 'arm0', 'description', b'desc', at_cloud,
                              ('arm0', 'description', b'desc'))
            for _ in range(3):
                edge_plane.repeat_latched()
            assert send_until(_Acker(cloud_plane), 'arm0',
                              None, (7, 9), acks, ('arm0', 7, 9))
            time.sleep(0.3)
            assert at_cloud.items.count(('arm0', 'description', b'desc')) == 1
            with pytest.raises(ValueError, match='no ack channel'):
                cloud_plane.send_ack('arm1', 1, 1)
        finally:
            edge_plane.close()
            cloud_plane.close()


class _Acker:
    """send_until's 'plane' for acks: send(rid, _, (committed, stored))."""

    def __init__(self, plane):
        self.plane = plane

    def send(self, rid, _topic, ack):
        self.plane.send_ack(rid, *ack)


def test_reliable_transitions_survive_a_cut_link_once_each(folder):
    """Edge outbox + cloud de-duplication over a relay that drops every connection: all
    seqs reach the cloud's 'replay' exactly once, and the acks empty the outbox."""
    from realrl_bridge.delay_proxy import DelayProxy
    from realrl_bridge.topic_plane import TopicPlane
    from realrl_bridge.transition_link import Downlink, Uplink
    with tls_router(folder, cloud_names=('cloud',)) as (router, endpoint), \
            DelayProxy(('127.0.0.1', int(endpoint.rsplit(':', 1)[1]))) as proxy, \
            site_edge(f'tls/127.0.0.1:{proxy.port}', folder, 'lab_a') as e, \
            site_edge(endpoint, folder, 'cloud') as c:
        up, down, replay = Uplink(limit=1000, resend_after_s=0.3), Downlink(), []

        def at_cloud(rid, topic, payload, header):
            if down.accept(rid, header.seq, time.monotonic()):
                replay.append(header.seq)

        def on_ack(rid, committed, stored):
            up.on_ack(rid, committed)
        edge_plane = TopicPlane(e, 'edge', ('arm0',), RELIABLE, Got(), on_ack=on_ack)
        cloud_plane = TopicPlane(c, 'cloud', ('arm0',), RELIABLE, at_cloud)

        def offer(seq):
            if up.offer('arm0', seq, b'tr%d' % seq, time.monotonic()) == 'send':
                edge_plane.send('arm0', 'transition', b'tr%d' % seq, seq=seq)

        def pump(seconds):   # the edge's resend timer and the replay node's acks
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for rid, seq, payload in up.due(time.monotonic()):
                    edge_plane.send(rid, 'transition', payload, seq=seq)
                durable = sorted(replay)
                committed = next((i for i, s in enumerate(durable, 1) if s != i), None)
                committed = len(durable) if committed is None else committed - 1
                down.on_ack('arm0', committed)
                if committed:
                    cloud_plane.send_ack('arm0', committed, committed)
                time.sleep(0.05)
        try:
            for seq in range(1, 11):
                offer(seq)
            pump(1.0)
            assert sorted(replay) == list(range(1, 11)) and len(up) == 0
            proxy.refuse = True
            proxy.cut()                       # the link drops; reconnects are refused
            for seq in range(11, 31):
                offer(seq)
                offer(seq)                    # the driver's own re-send: held, not sent
            pump(1.0)
            assert len(up) == 20              # nothing crossed, nothing was dropped
            proxy.refuse = False
            deadline = time.monotonic() + 20
            while (len(up) or len(replay) < 30) and time.monotonic() < deadline:
                pump(0.5)
            assert sorted(replay) == list(range(1, 31))       # none lost, none twice
            assert len(up) == 0 and up.counters.resent >= 20
            assert up.counters.already_held == 20
        finally:
            edge_plane.close()
            cloud_plane.close()


def test_a_site_hears_only_its_own_robots_acks(folder):
    from realrl_bridge.topic_plane import TopicPlane
    with tls_router(folder, cloud_names=('cloud',)) as (router, endpoint), \
            site_edge(endpoint, folder, 'lab_a') as e, site_edge(endpoint, folder, 'cloud') as c:
        acks = Got()
        # lab_a asks for arm1's acks too (arm1 is lab_b's): the router's ACL refuses them
        rogue = TopicPlane(e, 'edge', ('arm0', 'arm1'), RELIABLE, Got(), on_ack=acks)
        cloud_plane = TopicPlane(c, 'cloud', ('arm0', 'arm1'), RELIABLE, Got())
        try:
            for _ in range(3):
                cloud_plane.send_ack('arm1', 5, 5)
            assert send_until(_Acker(cloud_plane), 'arm0', None, (3, 3), acks, ('arm0', 3, 3))
            time.sleep(0.3)
            assert [a for a in acks.items if a[0] == 'arm1'] == []
        finally:
            rogue.close()
            cloud_plane.close()
