"""The bridge node: allow-listed robot topics between a site's ROS graph and the cloud's.

One node per side. At an edge it subscribes to ``/<robot_id>/<topic>`` for every 'up'
topic of its robots and forwards each message, still serialized (CDR, taken raw from DDS),
over the Zenoh link; it publishes the 'down' topics it receives. The cloud node does the
reverse. The two ROS graphs need not share a DDS domain or a network: only the Zenoh link
joins them (mutual TLS to the cloud router, which keeps each site to its own robots).

A ``reliable`` topic (transitions) goes through the edge's ``Uplink`` (resent until acked,
bounded) and the cloud's ``Downlink`` (each seq once); the cloud node reads the replay
node's acks on ``ack_topic`` and the edge node publishes them there for its drivers. Topics
with png/jpeg compression are decoded here (their images are encoded), all others stay raw.
Listed ``services`` of the cloud (e.g. the replay node's sender_state) are offered at the
edge and answered across the link (``service_bridge``).
With ``weights``, the cloud node serves the learner's weights and the edge node publishes
each new version for its policy (``weights_plane``).

Parameters: ``realrl_bridge.node_config.BridgeNodeConfig``.
"""
from __future__ import annotations

import importlib
import json
import time

import zenoh
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import deserialize_message, serialize_message

from realrl_bridge import link
from realrl_bridge.node_config import BridgeNodeConfig
from realrl_bridge.payload_codec import Header, decode_images, encode_images
from realrl_bridge.service_bridge import EdgeService, answer_in_cloud
from realrl_bridge.topic_plane import OUTGOING, TopicPlane
from realrl_bridge.transition_link import Downlink, Uplink
from realrl_bridge.weights_plane import CloudWeights, EdgeWeights
from realrl_common import qos
from realrl_common.config import ConfigError
from realrl_common.node_main import spin_node
from realrl_common.ros_params import read_config
from realrl_common.scheduling import set_process_nice


def message_class(type_name: str):
    """'package/msg/Name' -> the message class; a ConfigError names what is missing."""
    package, _, name = type_name.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.msg'), name)
    except (ImportError, AttributeError):
        raise ConfigError(f'message type {type_name!r} is not installed (is its package '
                          f'built and sourced?)') from None


class BridgeNode(Node):
    """Thin adapter: ROS subscriptions/publishers <-> a TopicPlane."""

    def __init__(self):
        super().__init__('bridge', automatically_declare_parameters_from_overrides=True)
        self.cfg = read_config(self, BridgeNodeConfig)
        refused = set_process_nice(self.cfg.nice)   # before Zenoh starts its threads
        if refused:
            self.get_logger().warning(f'{refused}; observations and actions may wait for '
                                      f'the CPU behind training')
        routes = self.routes = self.cfg.routes()
        classes = self.classes = {t: message_class(r.type) for t, r in routes.items()}
        try:
            tls = link.TlsFiles(self.cfg.tls.ca, self.cfg.tls.cert, self.cfg.tls.key)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        out = OUTGOING[self.cfg.side]
        self._ros_out = {}
        for rid in self.cfg.robot_ids:
            for topic, route in routes.items():
                name, profile = f'/{rid}/{topic}', self._qos(route.qos)
                if route.direction == out:
                    # a group per topic: an observation is never queued behind a transition
                    # being compressed (the executor has threads for both)
                    self.create_subscription(classes[topic], name, self._forwarder(rid, topic),
                                             profile, raw=True,
                                             callback_group=MutuallyExclusiveCallbackGroup())
                else:
                    self._ros_out[(rid, topic)] = self.create_publisher(classes[topic], name,
                                                                        profile)
        self._session = self._open(tls)
        self.uplink = Uplink(self.cfg.outbox_limit, self.cfg.resend_after_s)
        self.downlink = Downlink()
        reliable = any(r.reliable for r in routes.values())
        try:
            self.plane = TopicPlane(self._session, self.cfg.side, tuple(self.cfg.robot_ids),
                                    routes, self._deliver, link.Keys(self.cfg.key_prefix),
                                    on_ack=self._on_link_ack if reliable else None)
        except BaseException:
            self._session.close()   # an open session would keep the process alive
            raise
        self._ack_pub = None
        if reliable:
            from realrl_interfaces.msg import TransitionAck
            self._ack_class = TransitionAck
            if self.cfg.side == 'edge':
                self._ack_pub = self.create_publisher(TransitionAck, self.cfg.ack_topic,
                                                      qos.DATA_QOS)
                self.create_timer(min(0.2, self.cfg.resend_after_s / 2), self._resend)
            else:
                self.create_subscription(TransitionAck, self.cfg.ack_topic,
                                         self._on_replay_ack, qos.DATA_QOS)
        self.create_timer(2.0, self.plane.repeat_latched)
        self._queryables, self._edge_services = [], []
        keys = link.Keys(self.cfg.key_prefix)
        for name, sroute in self.cfg.service_routes().items():
            if self.cfg.side == 'edge':
                self._edge_services.append(EdgeService(self, self._session, keys,
                                                  self.cfg.robot_ids, name, sroute))
            else:
                self._queryables += answer_in_cloud(self, self._session, keys,
                                                    tuple(self.cfg.robot_ids), name, sroute)
        self.weights = self._weights(keys)
        self.get_logger().info(
            f'{self.cfg.side} bridge to {self.cfg.connect}: sends '
            f'{sorted(self.plane.outgoing())}, receives {sorted(self.plane.incoming())}')

    def _weights(self, keys: link.Keys) -> CloudWeights | EdgeWeights | None:
        """The learner's weights across the link (``weights`` parameter), or None."""
        route = self.cfg.weights_route()
        if route is None:
            return None
        from realrl_common.weight_msgs import to_msg
        from realrl_interfaces.msg import WeightChunk
        if self.cfg.side == 'cloud':
            self.create_subscription(WeightChunk, route.topic, self._on_weight_chunk,
                                     qos.WEIGHTS_QOS)
            return CloudWeights(self._session, route, keys)
        pub = self.create_publisher(WeightChunk, route.topic, qos.WEIGHTS_QOS)
        log = self.get_logger()

        def publish(c) -> None:   # from the receiver's thread; rclpy publishers are safe
            pub.publish(to_msg(c))
            if c.index == c.count - 1:
                log.info(f'weights v{c.version} from the cloud published on {route.topic}',
                         throttle_duration_sec=10.0)
        return EdgeWeights(self._session, route, publish, keys, on_error=log.error)

    def _on_weight_chunk(self, msg) -> None:
        from realrl_common.weight_msgs import from_msg
        try:
            served = self.weights.on_chunk(from_msg(msg))
        except ValueError as e:
            self.get_logger().error(str(e))
            return
        if served:
            self.get_logger().info(f'weights v{served} served to the sites',
                                   throttle_duration_sec=10.0)

    def _open(self, tls: link.TlsFiles) -> zenoh.Session:
        """A session to the router, tried for ``connect_wait_s`` (the router may start later
        than this site)."""
        config = link.to_zenoh(link.edge_config(self.cfg.connect, tls))
        deadline = time.monotonic() + self.cfg.connect_wait_s
        while True:
            try:
                return zenoh.open(config)
            except zenoh.ZError as e:
                if time.monotonic() >= deadline:
                    raise ConfigError(
                        f'connect: cannot open a TLS session to {self.cfg.connect} within '
                        f'{self.cfg.connect_wait_s:g} s ({e}); check the address and that tls '
                        f'names this site\'s certificate of the router\'s CA') from None
                time.sleep(1.0)

    @staticmethod
    def _qos(name: str):
        return getattr(qos, f'{name.upper()}_QOS')

    def _forwarder(self, robot_id: str, topic: str):
        route = self.routes[topic]
        images = route.compression in ('png', 'jpeg')

        def forward(serialized: bytes) -> None:
            codec, seq = None, -1
            if images or route.reliable:
                msg = deserialize_message(serialized, self.classes[topic])
                seq = int(msg.seq) if route.reliable else -1
                # no image to encode (a state-only observation): the bytes cross as they came
                if images and encode_images(msg, route.compression, route.jpeg_quality):
                    serialized, codec = serialize_message(msg), route.compression
                if route.reliable and self.uplink.offer(
                        robot_id, seq, (topic, serialized, codec), time.monotonic()) != 'send':
                    return  # held or acked already, or refused (the driver keeps it)
            self.plane.send(robot_id, topic, serialized, seq=seq, codec=codec)
        return forward

    def _resend(self) -> None:
        for rid, seq, (topic, payload, codec) in self.uplink.due(time.monotonic()):
            self.plane.send(rid, topic, payload, seq=seq, codec=codec)

    def _on_link_ack(self, robot_id: str, committed_seq: int, stored: int) -> None:
        self.uplink.on_ack(robot_id, committed_seq)
        if self._ack_pub is not None:
            self._ack_pub.publish(self._ack_class(robot_id=robot_id, committed_seq=committed_seq,
                                                  stored=stored))

    def _on_replay_ack(self, msg) -> None:
        if msg.robot_id in self.cfg.robot_ids:
            self.downlink.on_ack(msg.robot_id, int(msg.committed_seq))
            self.plane.send_ack(msg.robot_id, int(msg.committed_seq), int(msg.stored))

    def _deliver(self, robot_id: str, topic: str, payload: bytes, header: Header) -> None:
        route = self.routes[topic]
        if route.reliable and header.seq >= 0 and \
                not self.downlink.accept(robot_id, header.seq, time.monotonic()):
            return
        if header.codec in ('png', 'jpeg'):
            msg = deserialize_message(payload, self.classes[topic])
            decode_images(msg)
            payload = serialize_message(msg)
        self._ros_out[(robot_id, topic)].publish(payload)

    def counters(self) -> dict:
        """What crossed, for the log."""
        return {'sent': self.plane.sent, 'received': self.plane.received,
                'rate_dropped': self.plane.rate_dropped, 'bytes_sent': self.plane.bytes_sent,
                'uplink': vars(self.uplink.counters), 'outbox': len(self.uplink),
                'duplicates_dropped': self.downlink.duplicates,
                'delivered_reliable': self.downlink.delivered}

    def close(self) -> None:
        """Undeclare the Zenoh side and close the session."""
        self.get_logger().info('counters: ' + json.dumps(self.counters()))
        try:
            for service in self._edge_services:
                service.close()
            for q in self._queryables:
                q.undeclare()
            if self.weights is not None:
                self.weights.close()
            self.plane.close()
        finally:
            self._session.close()


def main(args=None):
    """The ``bridge`` entry point."""
    # several threads: a cloud service call that waits for the link blocks only its own
    spin_node(BridgeNode, 'bridge', args, make_executor=lambda: MultiThreadedExecutor(3))


if __name__ == '__main__':
    main()
