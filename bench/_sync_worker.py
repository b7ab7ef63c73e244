"""Weight syncs back to back for bench/control_latency_during_sync.py.

One process holds both ends of the link, as the weight traffic would load an edge machine:
a Zenoh router with mutual TLS on loopback serving a state dict of argv[1] float32
parameters with ``WeightServer``, and a site's ``WeightReceiver`` fetching every version
(1 MiB checksummed chunks, decoded). The server is paced to argv[2] bytes/s (the link's
budget; 0: unpaced) and the process runs at nice argv[3] (weights are background work at
an edge).

argv[4] ``deliver`` (optional; argv[5]: the first version number, argv[6]: the edge's
budget for its WeightChunks in Mbit/s, 0: unpaced): the state dict is the
blob of a real MLP actor (10 state dims, 3 action dims) of about argv[1] parameters, and
the receiver is an edge bridge's ``EdgeWeights``: every version is rebuilt as a blob and
published as WeightChunk messages on /learner/weights (DDS, this process's
ROS_DOMAIN_ID), where the policy node takes it and swaps it in. Without it the weights
stop at the receiver.

Prints 'ready' once the state dict exists, then 'synced <seconds> <version>' per full sync
(each version changes every tensor) until SIGTERM, then 'bytes <chunk bytes sent>'.
"""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import _util  # noqa: F401  (puts the workspace's packages on sys.path)
import numpy as np
import zenoh
from realrl_bridge.weight_sync import WeightReceiver, WeightServer
from weight_sync import _free_port, make_state

from realrl_bridge import certs, link

STATE_DIM, ACTION_DIM = 10, 3
WIDTH = 2048


def actor_state(params: int) -> dict[str, np.ndarray]:
    """The blob of an MLP actor of about ``params`` parameters, as a weight-sync state."""
    import torch
    from realrl_bridge.actor_blob import blob_to_state

    from realrl_policy.models import ActorConfig, build_actor
    from realrl_policy.weights_blob import pack_actor
    layers = max(2, round(params / WIDTH ** 2) + 1)
    with torch.no_grad():
        actor = build_actor(ActorConfig(hidden_sizes=(WIDTH,) * layers), STATE_DIM, ACTION_DIM)
        state = blob_to_state(pack_actor(actor))
    return {k: np.array(v) for k, v in state.items()}     # writable copies


class DdsEdge:
    """The edge bridge's weights half: versions received over Zenoh, published on DDS."""

    def __init__(self, session: zenoh.Session, site_mbit_s: float):
        import rclpy
        from realrl_bridge.node_config import WeightsRoute
        from realrl_bridge.weights_plane import EdgeWeights

        from realrl_common.qos import WEIGHTS_QOS
        from realrl_common.weight_msgs import to_msg
        from realrl_interfaces.msg import WeightChunk
        rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)  # ours stop
        self.node = rclpy.create_node('sync_worker_edge')
        pub = self.node.create_publisher(WeightChunk, '/learner/weights', WEIGHTS_QOS)

        self.weights = EdgeWeights(session, WeightsRoute(stream='bench', site_mbit_s=site_mbit_s),
                                    lambda c: pub.publish(to_msg(c)))
        self.receiver = self.weights.receiver

    def close(self) -> None:
        import rclpy
        self.weights.close()
        self.node.destroy_node()
        rclpy.try_shutdown()


def main() -> None:
    params, rate, nice = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    deliver = len(sys.argv) > 4 and sys.argv[4] == 'deliver'
    version = int(sys.argv[5]) - 1 if deliver else 0
    os.nice(nice)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    state = actor_state(params) if deliver else make_state(params)
    changing = [a for k, a in state.items() if a.dtype == np.float32]
    with tempfile.TemporaryDirectory() as tmp:
        folder = certs.make_folder(Path(tmp), ['lab_a'])
        endpoint = f'tls/127.0.0.1:{_free_port()}'
        spec = link.RouterSpec(listen=endpoint, sites=(link.Site('lab_a', ('arm0',)),),
                               tls=link.TlsFiles(folder.ca.cert, folder.router.cert,
                                                 folder.router.key))
        router = zenoh.open(link.to_zenoh(link.router_config(spec)))
        site = folder.site('lab_a')
        edge = zenoh.open(link.to_zenoh(link.edge_config(
            endpoint, link.TlsFiles(folder.ca.cert, site.cert, site.key))))
        server = WeightServer(router, 'bench', delta=False, rate_bytes_s=rate or None)
        dds = DdsEdge(edge, float(sys.argv[6]) if len(sys.argv) > 6 else 0.0) if deliver else None
        rx = dds.receiver if deliver else WeightReceiver(edge, 'bench')
        try:
            time.sleep(0.3)
            print('ready', flush=True)
            while not stop.is_set():
                for a in changing:
                    a += 1e-3                   # a new version: every tensor changed
                t0 = time.perf_counter()
                version = server.publish(state, version + 1)
                while not rx.wait_version(version, 0.5):
                    if stop.is_set():
                        return
                print(f'synced {time.perf_counter() - t0:.3f} {version}', flush=True)
        finally:
            print(f'bytes {server.bytes_sent}', flush=True)
            (dds or rx).close()
            server.close()
            edge.close()
            router.close()


if __name__ == '__main__':
    main()
