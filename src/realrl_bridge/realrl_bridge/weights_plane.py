"""The learner's weights from the cloud's ROS graph to the edges' policies (no rclpy here).

    learner --WeightChunk--> cloud bridge: CloudWeights --Zenoh weight sync--> edge bridge:
    EdgeWeights --WeightChunk--> policy node

``CloudWeights.on_chunk`` takes the learner's chunks (``realrl_common.weights.Chunk``); once
a version is whole (its CRC-32 matches) and is a whole actor blob (``actor_blob``), it is
published to the ``WeightServer``, which serves only the newest version: a slow link skips
the versions that came while it was busy (latest wins, nothing queues). A blob that is not
whole is refused with its reason (``refused``, ``last_error``) and nothing is served.

``EdgeWeights`` runs a ``WeightReceiver`` (it pulls the newest version, checks each chunk's
CRC and each tensor's digest) and hands each new version, rebuilt as a blob and cut into
chunks, to ``publish`` (the edge bridge's ROS publisher), paced to the route's
``site_mbit_s``. A version that fails the checks is not published; the receiver waits for
a newer one (one that came while a version was being published is fetched after it:
latest wins).
"""
from __future__ import annotations

import threading
from typing import Callable

import zenoh

from realrl_bridge.actor_blob import blob_to_state, state_to_blob
from realrl_bridge.link import Keys
from realrl_bridge.node_config import WeightsRoute
from realrl_bridge.weight_sync import WeightReceiver, WeightServer
from realrl_common.weights import BlobAssembler, Chunk, budget, send_blob


class CloudWeights:
    """The learner's WeightChunk stream in, the newest whole version served over Zenoh."""

    def __init__(self, session: zenoh.Session, route: WeightsRoute, keys: Keys = Keys()):
        rate = route.max_mbit_s * 1e6 / 8 if route.max_mbit_s else None
        self.server = WeightServer(session, route.stream, keys=keys, encoding=route.encoding,
                                   delta=route.delta, rate_bytes_s=rate)
        self._assembler = BlobAssembler()
        self.refused = 0
        """Whole versions from the learner that were not actor blobs (not served)."""
        self.last_error = ''

    def on_chunk(self, chunk: Chunk) -> int:
        """Take one chunk; returns the version now served if this chunk completed it, else 0.

        Raises ValueError (with the version and why) for a whole blob that is refused."""
        whole = self._assembler.add(chunk)
        if whole is None:
            return 0
        version, blob = whole
        try:
            state = blob_to_state(blob)
        except ValueError as e:
            self.refused += 1
            self.last_error = f'weights v{version} refused, not served: {e}'
            raise ValueError(self.last_error) from None
        return self.server.publish(state, version)

    def close(self) -> None:
        """Stop serving."""
        self.server.close()


class EdgeWeights:
    """Keeps the edge's policy on the newest weights the cloud serves."""

    def __init__(self, session: zenoh.Session, route: WeightsRoute,
                 publish: Callable[[Chunk], None], keys: Keys = Keys(),
                 on_error: Callable[[str], None] | None = None):
        self._route = route
        self._publish = publish
        self._on_error = on_error
        self._lock = threading.Lock()
        self._bucket = budget(route.site_mbit_s, route.chunk_bytes)
        """Paces the chunks published for the site's policies."""
        self.published = 0
        """The newest version handed to ``publish`` (0: none yet)."""
        self.refused = 0
        """Versions received whole but not published (see ``last_error``)."""
        self.last_error = ''
        self.receiver = WeightReceiver(session, route.stream, keys=keys,
                                       on_weights=self._on_weights,
                                       on_refused=lambda v, why: self._refuse(why))

    def _on_weights(self, version: int, state: dict) -> None:
        try:
            blob = state_to_blob(state)
        except ValueError as e:
            self._refuse(f'weights v{version} refused, not given to the policy: {e}')
            return
        with self._lock:
            send_blob(version, blob, self._publish, chunk_bytes=self._route.chunk_bytes,
                      bucket=self._bucket)
            self.published = version

    def _refuse(self, why: str) -> None:
        self.refused += 1
        self.last_error = why
        if self._on_error is not None:
            self._on_error(why)

    def close(self) -> None:
        """Stop receiving."""
        self.receiver.close()
