"""Transitions across the link with no loss and no duplicates (no rclpy, no zenoh here).

The driver keeps every transition in its outbox until the replay node acknowledges it as
durable (``TransitionAck``: per robot, the highest durable seq, repeated every second). Over
the link the bridge pair keeps that promise and adds its own:

- ``Uplink`` (the edge bridge): an outbox keyed by ``(robot_id, seq)``. A transition is sent
  once when it comes, and again every ``resend_after_s`` until the cloud's ack covers it; a
  driver's own re-send of one it already holds is not sent twice. During an outage the
  sends are lost on the dead link and the outbox fills. Its bound is ``limit`` transitions;
  when it is full a new transition is *refused*: it stays in the driver's outbox (no ack
  comes for it), the driver re-sends it later, and once the driver's outbox is full too the
  driver holds the robot ('outbox_full'). So nothing is dropped anywhere; the robot stops
  instead, the safe end.
- ``Downlink`` (the cloud bridge): drops what the replay node acknowledged already and a
  copy of a seq it passed less than ``redeliver_after_s`` ago (copies in flight when the
  link came back); a seq still unacknowledged after that is passed again, because the
  replay node takes seqs only in order and drops one that came early (it waits for its
  re-send). The replay node de-duplicates by seq, so a re-delivery is never stored twice.

Acks travel back from the cloud bridge to the edge's ROS graph, where the driver and the
uplink both take them.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class LinkCounters:
    """What crossed, for logs and benchmarks."""

    sent: int = 0
    """First sends."""
    resent: int = 0
    """Sends again (no ack yet)."""
    acked: int = 0
    """Transitions the cloud acknowledged."""
    refused_full: int = 0
    """Refused because the outbox was full (the driver still holds them)."""
    already_held: int = 0
    """A driver's re-send of one the outbox holds (not sent again)."""
    already_acked: int = 0
    """A driver's re-send of one already acknowledged (its ack is on the way to it)."""


class Uplink:
    """The edge bridge's bounded outbox of transitions, keyed by (robot_id, seq)."""

    def __init__(self, limit: int = 10_000, resend_after_s: float = 1.0):
        if limit < 1 or resend_after_s <= 0:
            raise ValueError(f'limit must be >= 1 and resend_after_s > 0, got {limit}, '
                             f'{resend_after_s}')
        self.limit = limit
        self.resend_after_s = resend_after_s
        self.counters = LinkCounters()
        self._held: OrderedDict[tuple[str, int], tuple[float, object]] = OrderedDict()
        self._acked: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def offer(self, robot_id: str, seq: int, item: object, now: float) -> str:
        """Take a transition from the driver (``item``: what to send again, e.g. its payload):
        'send' (send it now), 'held' (already in the outbox), 'acked' (already acknowledged)
        or 'full' (refused: the driver keeps it)."""
        key = (robot_id, seq)
        with self._lock:
            if seq <= self._acked.get(robot_id, 0):
                self.counters.already_acked += 1
                return 'acked'
            if key in self._held:
                self.counters.already_held += 1
                return 'held'
            if len(self._held) >= self.limit:
                self.counters.refused_full += 1
                return 'full'
            self._held[key] = (now, item)
            self.counters.sent += 1
            return 'send'

    def on_ack(self, robot_id: str, committed_seq: int) -> int:
        """The cloud's ack: drop what it covers; returns how many were dropped."""
        with self._lock:
            if committed_seq <= self._acked.get(robot_id, 0):
                return 0
            self._acked[robot_id] = committed_seq
            gone = [k for k in self._held if k[0] == robot_id and k[1] <= committed_seq]
            for k in gone:
                del self._held[k]
            self.counters.acked += len(gone)
            return len(gone)

    def due(self, now: float, max_count: int = 1000) -> list[tuple[str, int, object]]:
        """Transitions whose ack is overdue, oldest first; their send time restarts."""
        out = []
        with self._lock:
            for key, (sent, item) in self._held.items():
                if now - sent < self.resend_after_s or len(out) >= max_count:
                    break  # in send order: the rest were sent later
                out.append((key[0], key[1], item))
            for rid, seq, item in out:
                self._held.pop((rid, seq))
                self._held[(rid, seq)] = (now, item)
            self.counters.resent += len(out)
        return out


@dataclass
class Downlink:
    """The cloud bridge's de-duplication of transitions, per robot."""

    redeliver_after_s: float = 1.0
    """A delivered, unacknowledged seq is passed again after this long (shorter than the
    edge's resend period, so every re-send of an unacknowledged seq gets through)."""
    duplicates: int = 0
    """Re-sent transitions dropped because they were delivered already."""
    delivered: int = 0
    _acked: dict = field(default_factory=dict)
    _seen: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, robot_id: str, seq: int, now: float) -> bool:
        """True if this (robot_id, seq) goes to the replay node (the first time, or again
        when it is still unacknowledged ``redeliver_after_s`` later)."""
        with self._lock:
            seen = self._seen.setdefault(robot_id, {})
            first = seen.get(seq)
            if seq <= self._acked.get(robot_id, 0) or (
                    first is not None and now - first < self.redeliver_after_s):
                self.duplicates += 1
                return False
            seen[seq] = now
            self.delivered += 1
            return True

    def on_ack(self, robot_id: str, committed_seq: int) -> None:
        """The replay node's ack: forget the seqs it covers."""
        with self._lock:
            if committed_seq <= self._acked.get(robot_id, 0):
                return
            self._acked[robot_id] = committed_seq
            seen = self._seen.get(robot_id)
            if seen:
                self._seen[robot_id] = {s: t for s, t in seen.items() if s > committed_seq}
