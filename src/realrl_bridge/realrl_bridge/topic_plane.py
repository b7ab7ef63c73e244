"""Allow-listed robot topics over Zenoh, as opaque serialized messages (no rclpy here).

A ``TopicPlane`` is one side of the link for a set of robots. It sends the topics of its
outgoing direction (an edge: 'up'; the cloud: 'down') as Zenoh puts with each topic's
priority, congestion control and express flag, and delivers the incoming ones to a
callback ``(robot_id, topic, payload, header)``. Payloads are serialized ROS messages (CDR);
the plane never looks inside them. Keys: ``<prefix>/robot/<robot_id>/topic/<topic>``.

Per topic it also applies the rate limit (``max_rate_hz``: a message sooner than
``1 / max_rate_hz`` after the last one sent is dropped and counted) and zlib compression; the
codec and a reliable topic's seq ride in the attachment (``payload_codec.Header``). A
'latched' topic's last message is kept and put again by ``repeat_latched`` (a receiver that
joined later gets it; one that has it already does not deliver it twice). Acks of reliable
transitions go cloud -> edge on ``<prefix>/robot/<robot_id>/ack`` (``send_ack``, ``on_ack``).
"""
from __future__ import annotations

import struct
import time
from typing import Callable

import zenoh

from realrl_bridge.link import Keys
from realrl_bridge.node_config import TopicRoute
from realrl_bridge.payload_codec import Header, compress, decompress

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

ACK = struct.Struct('<QQ')
"""An ack on the link: committed_seq, stored."""

Deliver = Callable[[str, str, bytes, Header], None]
OnAck = Callable[[str, int, int], None]


class TopicPlane:
    """Sends this side's outgoing topics and delivers the incoming ones."""

    def __init__(self, session: zenoh.Session, side: str, robot_ids: tuple[str, ...],
                 routes: dict[str, TopicRoute], deliver: Deliver, keys: Keys = Keys(),
                 on_ack: OnAck | None = None):
        if side not in OUTGOING:
            raise ValueError(f"side must be 'edge' or 'cloud', got {side!r}")
        self.side = side
        self.routes = dict(routes)
        self._keys = keys
        self._deliver = deliver
        self._on_ack = on_ack
        self._publishers: dict[tuple[str, str], zenoh.Publisher] = {}
        self._ack_publishers: dict[str, zenoh.Publisher] = {}
        self._subscribers = []
        self._incoming: list[tuple[str, str]] = []
        self._last_sent: dict[tuple[str, str], float] = {}
        self._latched: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        self._latched_seen: dict[tuple[str, str], bytes] = {}
        self.sent = 0
        self.received = 0
        self.rate_dropped = 0
        self.bytes_sent = 0
        """Payload bytes put, after compression."""
        out = OUTGOING[side]
        reliable = any(r.reliable for r in self.routes.values())
        for rid in robot_ids:
            if reliable and side == 'cloud':
                self._ack_publishers[rid] = session.declare_publisher(
                    keys.robot(rid, 'ack'), priority=zenoh.Priority.DATA_HIGH,
                    congestion_control=zenoh.CongestionControl.BLOCK)
            elif reliable and on_ack is not None:
                self._subscribers.append(session.declare_subscriber(
                    keys.robot(rid, 'ack'), self._ack_receiver(rid)))
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
        latched = self.routes[topic].qos == 'latched'

        def on_sample(sample: zenoh.Sample) -> None:
            attachment = sample.attachment
            header = Header.unpack(None if attachment is None else attachment.to_bytes())
            payload = sample.payload.to_bytes()
            if latched:
                if self._latched_seen.get((robot_id, topic)) == payload:
                    return  # a repeat of what was delivered already
                self._latched_seen[(robot_id, topic)] = payload
            if header.codec == 'zlib':
                payload = decompress(payload)
            self.received += 1
            self._deliver(robot_id, topic, payload, header)
        return on_sample

    def _ack_receiver(self, robot_id: str):
        def on_sample(sample: zenoh.Sample) -> None:
            committed, stored = ACK.unpack(sample.payload.to_bytes())
            self._on_ack(robot_id, committed, stored)
        return on_sample

    def send(self, robot_id: str, topic: str, payload: bytes, *, seq: int = -1,
             codec: str | None = None, now: float | None = None) -> bool:
        """Put one serialized message of an outgoing topic; False if the rate limit dropped
        it. ``codec`` names an image codec the caller applied already (png, jpeg); zlib is
        applied here when the route asks for it."""
        try:
            publisher = self._publishers[(robot_id, topic)]
        except KeyError:
            raise ValueError(f'{robot_id}/{topic} is not an outgoing topic of this '
                             f'{self.side} side; allowed: {sorted(self._publishers)}') from None
        route = self.routes[topic]
        if route.max_rate_hz > 0:
            now = time.monotonic() if now is None else now
            last = self._last_sent.get((robot_id, topic))
            if last is not None and now - last < 1.0 / route.max_rate_hz:
                self.rate_dropped += 1
                return False
            self._last_sent[(robot_id, topic)] = now
        if codec is None:
            codec = 'zlib' if route.compression == 'zlib' else 'none'
            if codec == 'zlib':
                payload = compress(payload)
        attachment = Header(codec, seq).pack()
        if route.qos == 'latched':
            self._latched[(robot_id, topic)] = (payload, attachment)
        publisher.put(payload, attachment=attachment)
        self.sent += 1
        self.bytes_sent += len(payload)
        return True

    def repeat_latched(self) -> int:
        """Put each latched topic's last message again; returns how many."""
        for (rid, topic), (payload, attachment) in list(self._latched.items()):
            self._publishers[(rid, topic)].put(payload, attachment=attachment)
        return len(self._latched)

    def send_ack(self, robot_id: str, committed_seq: int, stored: int) -> None:
        """The cloud side: carry the replay node's ack of one robot to its edge."""
        try:
            publisher = self._ack_publishers[robot_id]
        except KeyError:
            raise ValueError(f'no ack channel for {robot_id!r}: the cloud side of a plane '
                             f'with a reliable topic sends acks of its robots only') from None
        publisher.put(ACK.pack(committed_seq, stored))

    def close(self) -> None:
        """Undeclare everything (the session's owner closes the session)."""
        for sub in self._subscribers:
            sub.undeclare()
        for pub in [*self._publishers.values(), *self._ack_publishers.values()]:
            pub.undeclare()
        self._subscribers.clear()
        self._publishers.clear()
        self._ack_publishers.clear()
