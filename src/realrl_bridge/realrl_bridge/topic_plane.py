"""Allow-listed robot topics over Zenoh, as opaque serialized messages (no rclpy here).

A ``TopicPlane`` is one side of the link for a set of robots. It sends the topics of its
outgoing direction (an edge: 'up'; the cloud: 'down') as Zenoh puts with each topic's
priority, congestion control and express flag, and delivers the incoming ones to a
callback ``(robot_id, topic, payload)``. Payloads are serialized ROS messages (CDR); the
plane never looks inside them. Keys: ``<prefix>/robot/<robot_id>/topic/<topic>``.
"""
from __future__ import annotations

from typing import Callable

import zenoh

from realrl_bridge.link import Keys
from realrl_bridge.node_config import TopicRoute

PRIORITY = {
    'real_time': zenoh.Priority.REAL_TIME,
    'interactive_high': zenoh.Priority.INTERACTIVE_HIGH,
    'interactive_low': zenoh.Priority.INTERACTIVE_LOW,
    'data_high': zenoh.Priority.DATA_HIGH,
    'data': zenoh.Priority.DATA,
    'data_low': zenoh.Priority.DATA_LOW,
    'background': zenoh.Priority.BACKGROUND,
}
CONGESTION = {'block': zenoh.CongestionControl.BLOCK, 'drop': zenoh.CongestionControl.DROP}
OUTGOING = {'edge': 'up', 'cloud': 'down'}

Deliver = Callable[[str, str, bytes], None]


class TopicPlane:
    """Sends this side's outgoing topics and delivers the incoming ones."""

    def __init__(self, session: zenoh.Session, side: str, robot_ids: tuple[str, ...],
                 routes: dict[str, TopicRoute], deliver: Deliver, keys: Keys = Keys()):
        if side not in OUTGOING:
            raise ValueError(f"side must be 'edge' or 'cloud', got {side!r}")
        self.side = side
        self.routes = dict(routes)
        self._keys = keys
        self._deliver = deliver
        self._publishers: dict[tuple[str, str], zenoh.Publisher] = {}
        self._subscribers = []
        self._incoming: list[tuple[str, str]] = []
        self.sent = 0
        self.received = 0
        out = OUTGOING[side]
        for rid in robot_ids:
            for topic, route in self.routes.items():
                key = self.key(rid, topic)
                if route.direction == out:
                    self._publishers[(rid, topic)] = session.declare_publisher(
                        key, priority=PRIORITY[route.priority],
                        congestion_control=CONGESTION[route.congestion], express=route.express)
                else:
                    self._incoming.append((rid, topic))
                    self._subscribers.append(session.declare_subscriber(
                        key, self._receiver(rid, topic)))

    def key(self, robot_id: str, topic: str) -> str:
        """The Zenoh key of a robot's topic."""
        return self._keys.robot(robot_id, 'topic', topic)

    def outgoing(self) -> list[tuple[str, str]]:
        """(robot_id, topic) pairs this side sends."""
        return list(self._publishers)

    def incoming(self) -> list[tuple[str, str]]:
        """(robot_id, topic) pairs this side receives."""
        return list(self._incoming)

    def _receiver(self, robot_id: str, topic: str):
        def on_sample(sample: zenoh.Sample) -> None:
            self.received += 1
            self._deliver(robot_id, topic, sample.payload.to_bytes())
        return on_sample

    def send(self, robot_id: str, topic: str, payload: bytes) -> None:
        """Put one serialized message of an outgoing topic."""
        try:
            publisher = self._publishers[(robot_id, topic)]
        except KeyError:
            raise ValueError(f'{robot_id}/{topic} is not an outgoing topic of this '
                             f'{self.side} side; allowed: {sorted(self._publishers)}') from None
        publisher.put(payload)
        self.sent += 1

    def close(self) -> None:
        """Undeclare everything (the session's owner closes the session)."""
        for sub in self._subscribers:
            sub.undeclare()
        for pub in self._publishers.values():
            pub.undeclare()
        self._subscribers.clear()
        self._publishers.clear()
