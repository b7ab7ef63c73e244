"""Weight sync over an emulated WAN (100 Mbit/s, 50 ms RTT) vs. raw puts on the same link.

Cloud and edge are separate processes in two network namespaces joined by a tbf-shaped
veth (``realrl_bridge.wan.WanLink``); the edge reaches the cloud router through the
delaying relay in its namespace (25 ms each way), over mutual TLS with the site's ACL.
The cloud process drives; the edge answers on its robot's key (``.../robot/arm0/ack``).

- ``sync_s``: cloud ``publish()`` until the edge's ack that it holds the decoded version
  (each repeat on a new stream, to a receiver that holds nothing: a full transfer); median.
- baseline ``raw_link_s``: the same bytes as 1 MiB reliable blocking puts cloud -> edge
  until the edge's ack that the last arrived; same run, same link, just before.
- ``delta_ratio``: delta sync (5 % of tensors changed) / full sync, same size (the last
  line's: the largest size).
Both figures include the ack's one-way trip (25 ms). Needs root; 10M parameters (40 MB,
about 3.4 s at 100 Mbit/s); 100M too without --quick.

    .venv/bin/python bench/weight_sync_wan.py [--quick] [--sizes N ...] [--repeats K]
"""
from __future__ import annotations

import argparse
import json
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _util
import numpy as np
import zenoh
from realrl_bridge.weight_sync import WeightReceiver, WeightServer
from weight_sync import CHUNK, make_state

from realrl_bridge import certs, link, wan

KEYS = link.Keys()
BLOCK = zenoh.CongestionControl.BLOCK
ACK = KEYS.robot('arm0', 'ack')
RAW = KEYS.weights('bench', 'raw')
PORT = 7447


class Acks:
    """Ack payloads from the edge, waited for by value."""

    def __init__(self):
        self.cv = threading.Condition()
        self.items: list[str] = []

    def __call__(self, sample):
        with self.cv:
            self.items.append(sample.payload.to_bytes().decode())
            self.cv.notify_all()

    def wait(self, text: str, timeout: float = 900) -> None:
        with self.cv:
            if not self.cv.wait_for(lambda: text in self.items, timeout):
                raise RuntimeError(f'no ack {text!r} from the edge within {timeout} s')


def cloud(args) -> None:
    folder = Path(args.certs)
    spec = link.RouterSpec(listen=f'tls/{args.host}:{PORT}', sites=(
        link.Site('lab_a', ('arm0',)),), tls=link.TlsFiles(
        folder / 'ca.pem', folder / 'router.pem', folder / 'router.key'))
    router = zenoh.open(link.to_zenoh(link.router_config(spec)))
    try:
        acks = Acks()
        router.declare_subscriber(ACK, acks)
        print('ready', flush=True)
        acks.wait('hello', 120)
        results = {}
        for params in args.sizes:
            results[str(params)] = one_size(router, acks, params, args.repeats)
            print('# ' + json.dumps(results[str(params)]), flush=True)
        router.put(KEYS.weights('bench', 'done'), b'')
        print(json.dumps(results), flush=True)
    finally:
        router.close()


def one_size(router, acks: Acks, params: int, repeats: int) -> dict:
    state = make_state(params)
    nbytes = sum(a.nbytes for a in state.values())
    n = -(-nbytes // CHUNK)
    payload = np.random.default_rng(1).integers(0, 255, CHUNK, dtype=np.uint8).tobytes()
    pub = router.declare_publisher(f'{RAW}/data', congestion_control=zenoh.CongestionControl.BLOCK)
    raws = []
    for rep in range(repeats):
        token = f'{params}-{rep}'                 # the edge echoes it: acks never repeat
        router.put(f'{RAW}/start', f'{n} {token}')
        acks.wait(f'armed {token}')
        t0 = time.perf_counter()
        for _ in range(n):
            pub.put(payload)
        acks.wait(f'raw {token}')
        raws.append(time.perf_counter() - t0)
    pub.undeclare()
    syncs, servers = [], []
    try:
        for rep in range(repeats):
            token = f'{params}-{rep}'            # a new stream: a receiver that holds nothing
            servers.append(WeightServer(router, f'bench-{token}'))
            router.put(KEYS.weights('bench', 'fresh'), token)
            acks.wait(f'fresh {token}')
            t0 = time.perf_counter()
            version = servers[-1].publish(state)
            acks.wait(f'have {token} {version}')
            syncs.append(time.perf_counter() - t0)
        names = list(state)
        changed = np.random.default_rng(5).choice(len(names), max(1, round(0.05 * len(names))),
                                                  replace=False)
        new = dict(state)
        for i in changed:
            new[names[i]] = state[names[i]] + np.float32(1e-3)
        t0 = time.perf_counter()
        version = servers[-1].publish(new)      # the last receiver holds the previous one
        acks.wait(f'have {token} {version}')
        delta_s = time.perf_counter() - t0
    finally:
        for server in servers:
            server.close()
    sync_s = statistics.median(syncs)
    raw_s = statistics.median(raws)
    return {'params': sum(a.size for a in state.values()), 'sync_s': sync_s,
            'raw_link_s': raw_s, 'ratio': sync_s / raw_s, 'link_Mbit_s': nbytes * 8 / raw_s / 1e6,
            'delta_sync_s': delta_s, 'delta_ratio': delta_s / syncs[-1]}


def edge(args) -> None:
    folder = Path(args.certs)
    session = zenoh.open(link.to_zenoh(link.edge_config(
        f'tls/127.0.0.1:{args.port}', link.TlsFiles(folder / 'ca.pem', folder / 'sites/lab_a.pem',
                                                   folder / 'sites/lab_a.key'),
        connect_timeout_ms=20000)))
    state = {'count': 0, 'n': 0, 'token': '', 'rx': None}
    lock = threading.Lock()

    def on_raw(sample):
        key = str(sample.key_expr)
        with lock:
            if key.endswith('/start'):
                n, state['token'] = sample.payload.to_bytes().decode().split()
                state['n'], state['count'] = int(n), 0
                session.put(ACK, f"armed {state['token']}", congestion_control=BLOCK)
                return
            state['count'] += 1
            if state['count'] == state['n']:
                session.put(ACK, f"raw {state['token']}", congestion_control=BLOCK)

    def on_control(sample):
        control.put((str(sample.key_expr).rsplit('/', 1)[1], sample.payload.to_bytes().decode()))

    control: queue.Queue = queue.Queue()
    try:
        session.declare_subscriber(f'{RAW}/**', on_raw)
        session.declare_subscriber(KEYS.weights('bench', 'done'), on_control)
        session.declare_subscriber(KEYS.weights('bench', 'fresh'), on_control)
        time.sleep(0.5)
        session.put(ACK, 'hello', congestion_control=BLOCK)
        while True:
            what, token = control.get(timeout=3600)
            if what == 'done':
                break
            if state['rx'] is not None:                   # 'fresh': a new, empty receiver
                state['rx'].close()
            state['rx'] = WeightReceiver(
                session, f'bench-{token}', on_weights=lambda v, s, t=token: session.put(
                    ACK, f'have {t} {v}', congestion_control=BLOCK))
            time.sleep(0.3)                 # its subscription reaches the router
            session.put(ACK, f'fresh {token}', congestion_control=BLOCK)
    finally:
        if state['rx'] is not None:
            state['rx'].close()
        session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--role', choices=['cloud', 'edge'])
    parser.add_argument('--certs')
    parser.add_argument('--host')
    parser.add_argument('--port', type=int)
    parser.add_argument('--sizes', type=int, nargs='*',
                        help='parameter counts (default: 10M, and 100M without --quick)')
    parser.add_argument('--repeats', type=int,
                        help='syncs per size (default: 3, 1 with --quick)')
    args = parser.parse_args()
    if args.role == 'cloud':
        return cloud(args)
    if args.role == 'edge':
        return edge(args)
    reason = wan.available()
    if reason:
        print(json.dumps({'skipped': reason}))
        return
    sizes = args.sizes or [10_000_000] + ([] if args.quick else [100_000_000])
    repeats = args.repeats or (1 if args.quick else 3)
    me = [sys.executable, str(Path(__file__).resolve())]
    env = wan.child_env()
    env['PYTHONPATH'] = str(_util.ROOT / 'bench') + ':' + env['PYTHONPATH']
    with tempfile.TemporaryDirectory() as tmp, \
            wan.WanLink(rate_mbit=100, rtt_ms=50, name='rrwanb', subnet='10.213.3') as w:
        certs.make_folder(tmp, ['lab_a'], router_hosts=(w.cloud_ip, '127.0.0.1'))
        cloud_p = w.popen(w.cloud_ns, me + ['--role', 'cloud', '--certs', tmp, '--host',
                                            w.cloud_ip, '--repeats', str(repeats), '--sizes',
                                            *map(str, sizes)],
                          stdout=subprocess.PIPE, text=True, env=env)
        if cloud_p.stdout.readline().strip() != 'ready':
            sys.exit(f'cloud side did not start (exit {cloud_p.poll()})')
        proxy_port = w.delay_proxy(PORT)
        w.popen(w.edge_ns, me + ['--role', 'edge', '--certs', tmp, '--port', str(proxy_port)],
                env=env)
        results = None
        for line in cloud_p.stdout:
            if line.startswith('# '):
                r = json.loads(line[2:])
                print(f"{r['params']:>13,} params over 100 Mbit/s, 50 ms RTT: sync "
                      f"{r['sync_s']:.2f} s, raw link {r['raw_link_s']:.2f} s "
                      f"({r['link_Mbit_s']:.0f} Mbit/s), ratio {r['ratio']:.3f}; delta "
                      f"{r['delta_sync_s']:.2f} s, delta_ratio {r['delta_ratio']:.3f}",
                      flush=True)
            elif line.startswith('{'):
                results = json.loads(line)
        cloud_p.wait(60)
    if results is None:
        sys.exit('the cloud side ended without results')
    largest = results[str(sizes[-1])]
    print(json.dumps({'sizes': results, 'delta_ratio': largest['delta_ratio'],
                      'link': '100 Mbit/s tbf, 50 ms RTT relay', 'quick': args.quick}))


if __name__ == '__main__':
    main()
