"""The robots' latched descriptions, for nodes that serve robots (policy, reward).

A node that answers a robot's observations needs the robot's description first (its state
layout and action bounds), published latched on ``/<robot>/description``. A node that
(re)starts late gets it from the driver's history when the two match. Should that not happen
(a reader matched before the driver's history was there, or a delivery lost while the
middleware replaced a crashed process's shared-memory port), the node would drop every
observation in silence and its robot would wait forever. Here, an observation from a robot
whose description has not arrived logs that, throttled, and replaces the subscription: a new
reader is a new late joiner, so the driver sends its history to it again.
"""
from __future__ import annotations

import time
from typing import Callable

from realrl_common.qos import LATCHED_QOS
from realrl_interfaces.msg import RobotDescription

RESUBSCRIBE_S = 3.0
"""How long after subscribing an observation without a description renews the subscription."""


class RobotDescriptions:
    """Subscribes to each robot's description; ``known(rid)`` in an observation callback
    says whether it arrived, and asks again if it should have."""

    def __init__(self, node, robot_ids, on_description: Callable[[RobotDescription], None]):
        self._node, self._callback = node, on_description
        self._subs: dict[str, object] = {}
        self._since: dict[str, float] = {}
        self.seen: set[str] = set()
        self.renewed = 0
        for rid in robot_ids:
            self._subscribe(rid)

    def _subscribe(self, rid: str) -> None:
        old = self._subs.pop(rid, None)
        if old is not None:
            self._node.destroy_subscription(old)
        self._subs[rid] = self._node.create_subscription(
            RobotDescription, f'/{rid}/description', self._on_description, LATCHED_QOS)
        self._since[rid] = time.monotonic()

    def _on_description(self, msg: RobotDescription) -> None:
        self.seen.add(msg.robot_id)
        self._callback(msg)

    def known(self, rid: str) -> bool:
        """Whether rid's description arrived; if not, and the robot is observing, the
        subscription is renewed (at most every RESUBSCRIBE_S)."""
        if rid in self.seen:
            return True
        if rid in self._subs and time.monotonic() - self._since[rid] > RESUBSCRIBE_S:
            self.renewed += 1
            self._node.get_logger().warning(
                f'observations from {rid} but no description on /{rid}/description after '
                f'{RESUBSCRIBE_S:g} s; subscribing again ({self.renewed} so far)')
            self._subscribe(rid)
        return False
