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
    def __init__(self):
        self.items, self.cv = [], threading.Condition()

    def __call__(self, *item):
        with self.cv:
            self.items.append(item)
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
        at_edge, at_cloud, raw = Got(), Got(), Got()
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
                          ({'tls': {'ca': 'x'}}, 'tls.cert')]:
        with pytest.raises(ConfigError, match=field):
            build_config(BridgeNodeConfig, {**good, **change})
    for route, field in [({'direction': 'sideways'}, 'direction'),
                         ({'priority': 'urgent'}, 'priority'),
                         ({'congestion': 'wait'}, 'congestion'),
                         ({'type': 'Transition'}, 'type'), ({'qos': 'best'}, 'qos'),
                         ({'prio': 'data'}, "did you mean 'priority'")]:
        topics = {'transition': {'type': 'realrl_interfaces/msg/Transition',
                                 'direction': 'up', **route}}
        with pytest.raises(ConfigError, match=field):
            build_config(BridgeNodeConfig, {**good, 'topics': topics})


def test_plane_refuses_unknown_side(folder):
    from realrl_bridge.topic_plane import TopicPlane
    with pytest.raises(ValueError, match='side'):
        TopicPlane(None, 'middle', ('arm0',), ROUTES, Got())
