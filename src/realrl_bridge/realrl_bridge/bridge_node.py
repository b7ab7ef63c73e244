"""The bridge node: allow-listed robot topics between a site's ROS graph and the cloud's.

One node per side. At an edge it subscribes to ``/<robot_id>/<topic>`` for every 'up'
topic of its robots and forwards each message, still serialized (CDR, taken raw from DDS),
over the Zenoh link; it publishes the 'down' topics it receives. The cloud node does the
reverse. The two ROS graphs need not share a DDS domain or a network: only the Zenoh link
joins them (mutual TLS to the cloud router, which keeps each site to its own robots).

Parameters: ``realrl_bridge.node_config.BridgeNodeConfig``.
"""
from __future__ import annotations

import importlib

import zenoh
from rclpy.node import Node

from realrl_bridge import link
from realrl_bridge.node_config import BridgeNodeConfig
from realrl_bridge.topic_plane import OUTGOING, TopicPlane
from realrl_common import qos
from realrl_common.config import ConfigError
from realrl_common.node_main import spin_node
from realrl_common.ros_params import read_config


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
        routes = self.cfg.routes()
        classes = {t: message_class(r.type) for t, r in routes.items()}
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
                    self.create_subscription(classes[topic], name, self._forwarder(rid, topic),
                                             profile, raw=True)
                else:
                    self._ros_out[(rid, topic)] = self.create_publisher(classes[topic], name,
                                                                        profile)
        try:
            self._session = zenoh.open(link.to_zenoh(link.edge_config(self.cfg.connect, tls)))
        except zenoh.ZError as e:
            raise ConfigError(f'connect: cannot open a TLS session to {self.cfg.connect} ({e}); '
                              f'check the address and that tls names this site\'s '
                              f'certificate of the router\'s CA') from None
        try:
            self.plane = TopicPlane(self._session, self.cfg.side, tuple(self.cfg.robot_ids),
                                    routes, self._deliver, link.Keys(self.cfg.key_prefix))
        except BaseException:
            self._session.close()   # an open session would keep the process alive
            raise
        self.get_logger().info(
            f'{self.cfg.side} bridge to {self.cfg.connect}: sends '
            f'{sorted(self.plane.outgoing())}, receives {sorted(self.plane.incoming())}')

    @staticmethod
    def _qos(name: str):
        return getattr(qos, f'{name.upper()}_QOS')

    def _forwarder(self, robot_id: str, topic: str):
        def forward(serialized: bytes) -> None:
            self.plane.send(robot_id, topic, serialized)
        return forward

    def _deliver(self, robot_id: str, topic: str, payload: bytes) -> None:
        self._ros_out[(robot_id, topic)].publish(payload)

    def close(self) -> None:
        """Undeclare the Zenoh side and close the session."""
        try:
            self.plane.close()
        finally:
            self._session.close()


def main(args=None):
    """The ``bridge`` entry point."""
    spin_node(BridgeNode, 'bridge', args)


if __name__ == '__main__':
    main()
