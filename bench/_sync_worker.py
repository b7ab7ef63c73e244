"""Weight syncs back to back for bench/control_latency_during_sync.py.

One process holds both ends of the link, as the weight traffic would load an edge machine:
a Zenoh router with mutual TLS on loopback serving a state dict of argv[2] float32
parameters with ``WeightServer``, and a site's ``WeightReceiver`` fetching every version
(1 MiB CRC-checked chunks, decoded). The server is paced to argv[2] bytes/s (the link's
budget) and the process runs at nice argv[3] (weights are background work at an edge).
Prints 'ready' once the state dict exists, then 'synced <seconds>' per full sync (each
version changes every tensor) until SIGTERM, then 'bytes <chunk bytes sent>'.
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
import zenoh
from realrl_bridge.weight_sync import WeightReceiver, WeightServer
from weight_sync import _free_port, make_state

from realrl_bridge import certs, link


def main() -> None:
    params, rate, nice = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    os.nice(nice)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    state = make_state(params)
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
        rx = WeightReceiver(edge, 'bench')
        try:
            time.sleep(0.3)
            print('ready', flush=True)
            while not stop.is_set():
                for a in state.values():
                    a += 1e-3                   # a new version: every tensor changed
                t0 = time.perf_counter()
                version = server.publish(state)
                while not rx.wait_version(version, 0.5):
                    if stop.is_set():
                        return
                print(f'synced {time.perf_counter() - t0:.3f}', flush=True)
        finally:
            print(f'bytes {server.bytes_sent}', flush=True)
            rx.close()
            server.close()
            edge.close()
            router.close()


if __name__ == '__main__':
    main()
