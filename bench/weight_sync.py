"""Weight sync over a mutually authenticated Zenoh link vs. the link's own raw bandwidth.

A cloud router (TLS, per-site ACL) serves the weights with ``WeightServer``; an edge client
of site ``lab_a`` fetches them with ``WeightReceiver`` (1 MiB chunks, XXH3-checked,
reassembled, decoded) in a process of its own (``_weight_sync_edge.py``), as a site is a
machine of its own: in one process the two ends would share one interpreter lock. State
dicts are MLP-like stacks of 2048x1024 float32 layers with biases, filled with N(0, 0.02)
(what an initialised network holds), of 10M and 100M parameters (and 1B without --quick, if
the machine has the memory free). Times are ``time.monotonic()``, one clock for both
processes on this host.

- ``sync_s``: from ``publish()`` (digests and encoding included) until the receiver holds the
  decoded state dict (its ``on_weights`` is called); median over repeats, each on a new
  stream with a receiver that holds nothing yet (a full transfer). The edge's receivers
  share one pool of receive buffers (``ReceiveBuffers``), as successive versions at one
  edge do: each repeat receives into the memory the one before it used, as a receiver does
  from its third version on.
- ``first_sync_s`` (``first_ratio``): the first sync, into memory the process never touched
  (one page fault per 4 KiB: on this VM about 3 ms per MB, more than the link's 2 ms per
  MB), as a receiver's first two versions are.
- baseline ``raw_link_s``: the same number of payload bytes put as 1 MiB samples from the
  router's session to a subscriber in the edge process, reliable and blocking, until the
  last one arrived (one payload put again and again, its bytes not read at the edge);
  measured in the same run, on the same link, interleaved with the syncs (raw, sync, raw,
  sync ...: 11 each, 5 at 1B, 3 with --quick), median: single syncs on this VM range from
  0.8 to 2x the raw put beside them, so fewer repeats move the median by a tenth.
- ``ratio`` = sync_s / raw_link_s: the cost of the protocol over the bare link.
- ``delta_ratio``: a receiver holding version k gets k+1 with 5 % of the tensors changed;
  delta sync time / full sync time (100M; median of as many deltas as full syncs, each
  with another 5 % changed). ``delta_bytes_ratio``: bytes sent / full bytes.
- ``bf16``: the same full sync with bf16 encoding (half the bytes).

A full sync includes the receiver's check of every tensor against its digest (one XXH3-128
pass; ``--no-verify`` leaves it out). The link is TLS over loopback between the two
processes: the figure leaves out a real network's latency and loss
(``bench/weight_sync_wan.py`` runs over the emulated 100 Mbit/s, 50 ms RTT link of
``realrl_bridge.wan``). Not included: the learner's own ``state_dict()`` copy and loading
into torch at the edge.

``--cpu-wake-latency-us 0`` runs both processes with idle CPUs polling (the cloud-edge
graphs' ``host`` setting), syncs and raw puts alike. It does not speed a sync up here (quick
runs on the 2-core VM: 10M 0.08 s, 100M 0.66-0.73 s either way) and slows the raw puts
(877 -> 656 MB/s at 10M, 969 -> 791 MB/s at 100M: a polling CPU takes from its sibling), so
it is off by default: throughput-bound work gains nothing from waking sooner.

    .venv/bin/python bench/weight_sync.py [--quick] [--params N ...] [--no-verify]
                                          [--cpu-wake-latency-us US]
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _util  # noqa: F401  (puts the workspace's packages on sys.path)
import numpy as np
import zenoh
from realrl_bridge.weight_sync import WeightServer
from realrl_bridge.weights_codec import digest

from realrl_bridge import certs, link
from realrl_common.scheduling import CpuWakeLatency

CHUNK = 1 << 20
LAYER = (2048, 1024)
HEADROOM = 6 << 30
"""Memory left to the other users of a shared machine: a size that needs its ~3 copies
of the state (the sender's tensors, the receiver's buffer, transients) plus this is
skipped. The decoded state dict is views of the receiver's buffer, and the raw baseline
reuses one 1 MiB payload; ``peak_rss_gib`` in the result is what the process used."""


def make_state(params: int, seed: int = 0) -> dict[str, np.ndarray]:
    """An MLP-like state dict of about ``params`` float32 parameters."""
    rng = np.random.default_rng(seed)
    per_layer = LAYER[0] * LAYER[1] + LAYER[0]
    state = {}
    for i in range(max(1, round(params / per_layer))):
        w = rng.standard_normal(LAYER, dtype=np.float32)
        w *= 0.02
        state[f'layers.{i}.weight'] = w
        state[f'layers.{i}.bias'] = np.zeros(LAYER[0], np.float32)
    return state


def n_params(state) -> int:
    return sum(a.size for a in state.values())


class Edge:
    """The edge site: ``_weight_sync_edge.py`` in its own process (a site is a machine of its
    own; in this process it would share the sender's interpreter lock), told what to do
    one JSON line at a time."""

    def __init__(self, endpoint: str, tls: link.TlsFiles):
        self._p = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve().parent / '_weight_sync_edge.py'),
             endpoint, str(tls.ca), str(tls.cert), str(tls.key)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def send(self, **command) -> None:
        self._p.stdin.write(json.dumps(command) + '\n')
        self._p.stdin.flush()

    def read(self) -> dict:
        line = self._p.stdout.readline()
        if not line:
            raise RuntimeError(f'the edge process ended (status {self._p.wait()})')
        answer = json.loads(line)
        if 'error' in answer:
            raise RuntimeError(f"edge: {answer['error']}")
        return answer

    def ask(self, **command) -> dict:
        self.send(**command)
        return self.read()

    def close(self) -> None:
        self._p.stdin.close()
        try:
            self._p.wait(30)
        except subprocess.TimeoutExpired:
            self._p.kill()
            self._p.wait()


def raw_link_s(router: zenoh.Session, edge: Edge, nbytes: int) -> float:
    """Seconds to move nbytes as 1 MiB reliable, blocking puts router -> edge (until the
    edge process's subscriber has the last one)."""
    n = -(-nbytes // CHUNK)
    key = link.Keys().weights('bench', 'raw')
    edge.send(cmd='raw', key=key, n=n)
    probed = threading.Event()

    def probe():                              # until the subscription has reached the router
        while not probed.wait(0.1):
            router.put(f'{key}-probe', b'')
    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        edge.read()
    finally:
        probed.set()
        prober.join()
    payload = np.random.default_rng(1).integers(0, 255, CHUNK, dtype=np.uint8).tobytes()
    pub = router.declare_publisher(f'{key}/data', congestion_control=
                                   zenoh.CongestionControl.BLOCK)
    try:
        t0 = time.monotonic()
        for _ in range(n):
            pub.put(payload)
        return edge.read()['done'] - t0
    finally:
        pub.undeclare()


def sync_once(server: WeightServer, edge: Edge, stream: str, state) -> float:
    """Publish ``state``; seconds until the edge's receiver of ``stream`` holds it (its first
    and last tensors are checked against the sent ones, bf16 excepted)."""
    names = [next(iter(state)), list(state)[-1]]
    t0 = time.monotonic()
    version = server.publish(state)
    got = edge.ask(cmd='wait', stream=stream, version=version, names=names)
    if server.encoding != 'bf16':
        for n in names:
            assert got['digests'][n] == digest(state[n]), f'{n} differs at the edge'
    return got['done'] - t0


VERIFY = [True]
"""The receiver checks every tensor's digest (the default; --no-verify: the chunks' checksums
only)."""


def full_sync(router, edge: Edge, state, stream: str, encoding: str = 'raw') -> float:
    """A full transfer: a new stream, its server, and a receiver that holds nothing."""
    server = WeightServer(router, stream, encoding=encoding)
    try:
        edge.ask(cmd='open', stream=stream, verify=VERIFY[0])
        try:
            time.sleep(0.2)                     # its subscription reaches the router
            return sync_once(server, edge, stream, state)
        finally:
            edge.ask(cmd='close', stream=stream)
    finally:
        server.close()


def measure_size(router, edge: Edge, params: int, repeats: int, extras: bool) -> dict:
    state = make_state(params)
    nbytes = sum(a.nbytes for a in state.values())
    first = full_sync(router, edge, state, f'first-{params}')
    raws, syncs = [], []
    for rep in range(repeats):                  # interleaved: both see the same load
        raws.append(raw_link_s(router, edge, nbytes))
        syncs.append(full_sync(router, edge, state, f'full-{params}-{rep}'))
    raw = statistics.median(raws)
    out = {'params': n_params(state), 'bytes': nbytes, 'sync_s': statistics.median(syncs),
           'raw_link_s': raw, 'link_MBps': nbytes / raw / 1e6, 'first_sync_s': first,
           'first_ratio': first / raw, 'repeats': repeats}
    out['ratio'] = out['sync_s'] / raw
    if extras:
        out.update(delta_figures(router, edge, state, out['sync_s'], f'delta-{params}',
                                 repeats))
        out['bf16_sync_s'] = statistics.median(
            full_sync(router, edge, state, f'bf16-{params}-{rep}', 'bf16')
            for rep in range(repeats))
    return out


def delta_figures(router, edge: Edge, state, full_s: float, stream: str,
                  repeats: int) -> dict:
    """A receiver holding version k gets k+1 with 5 % of the tensors changed (another 5 %
    each repeat); median over ``repeats``."""
    server = WeightServer(router, stream)
    edge.ask(cmd='open', stream=stream, verify=VERIFY[0])
    rng = np.random.default_rng(5)
    names = list(state)
    times, sent = [], []
    try:
        time.sleep(0.2)
        sync_once(server, edge, stream, state)
        current = dict(state)
        for _ in range(repeats):
            changed = rng.choice(len(names), max(1, round(0.05 * len(names))), replace=False)
            for i in changed:
                current[names[i]] = current[names[i]] + np.float32(1e-3)
            sent_before = server.bytes_sent
            times.append(sync_once(server, edge, stream, current))
            sent.append(server.bytes_sent - sent_before)
            got = edge.ask(cmd='wait', stream=stream, version=server.version,
                           names=[names[i] for i in changed])
            for i in changed:
                assert got['digests'][names[i]] == digest(current[names[i]])
    finally:
        edge.ask(cmd='close', stream=stream)
        server.close()
    full_bytes = sum(a.nbytes for a in state.values())
    delta_s = statistics.median(times)
    return {'delta_sync_s': delta_s, 'delta_ratio': delta_s / full_s,
            'delta_ratios': [round(t / full_s, 3) for t in times],
            'delta_bytes_ratio': statistics.median(sent) / full_bytes,
            'delta_changed_tensors': f'{len(changed)}/{len(names)}'}


def mem_available() -> int:
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    def options(p):
        p.add_argument('--params', type=int, nargs='+',
                       help='only these sizes (default: 10M, 100M, 1B)')
        p.add_argument('--no-verify', action='store_true',
                       help="full syncs without the receiver's per-tensor digest check")
        p.add_argument('--cpu-wake-latency-us', type=int, default=-1,
                       help='held for the whole run, syncs and raw puts alike (0: idle '
                            "CPUs poll, the cloud-edge graphs' host setting; -1, the "
                            "default: the machine's own idle states)")
    args = _util.parse(__doc__.split('\n')[0], options)
    wake = None if args.cpu_wake_latency_us < 0 else CpuWakeLatency(args.cpu_wake_latency_us)
    if wake is not None and wake.refused:
        print(f'bench: {wake.refused}; measuring with the machine as it is', flush=True)
    VERIFY[0] = not args.no_verify
    sizes = [10_000_000, 100_000_000] + ([] if args.quick else [1_000_000_000])
    sizes = args.params or sizes
    repeats = 3 if args.quick else 11
    results, skipped = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = certs.make_folder(tmp, ['lab_a'])
        port = _free_port()
        spec = link.RouterSpec(listen=f'tls/127.0.0.1:{port}', sites=(
            link.Site('lab_a', ('arm0',)),), tls=link.TlsFiles(
            folder.ca.cert, folder.router.cert, folder.router.key))
        router = zenoh.open(link.to_zenoh(link.router_config(spec)))
        try:
            edge = Edge(spec.listen, link.TlsFiles(folder.ca.cert, folder.site('lab_a').cert,
                                                    folder.site('lab_a').key))
            try:
                for params in sizes:
                    need = params * 4 * 3 + HEADROOM
                    if mem_available() < need:
                        skipped[str(params)] = (f'needs ~{need / 2**30:.0f} GiB free (6 GiB '
                                                f'left to others included), '
                                                f'{mem_available() / 2**30:.1f} GiB available')
                        print(f'skip {params:,} params: {skipped[str(params)]}', flush=True)
                        continue
                    r = measure_size(router, edge, params, min(repeats, 5) if params >= 10 ** 9
                                     else repeats, params == 100_000_000)
                    results[str(params)] = r
                    print(f"{r['params']:>13,} params  sync {r['sync_s']:7.2f} s  raw link "
                          f"{r['raw_link_s']:7.2f} s ({r['link_MBps']:.0f} MB/s)  ratio "
                          f"{r['ratio']:.2f}  (first, fresh memory: {r['first_sync_s']:.2f} s, "
                          f"{r['first_ratio']:.2f})", flush=True)
                    if 'delta_ratio' in r:
                        print(f"   delta ({r['delta_changed_tensors']} tensors changed): "
                              f"{r['delta_sync_s']:.2f} s, delta_ratio {r['delta_ratio']:.3f}, "
                              f"bytes {r['delta_bytes_ratio']:.3f}; bf16 full sync "
                              f"{r['bf16_sync_s']:.2f} s", flush=True)
                edge_peak = edge.ask(cmd='rss')['rss_gib']
            finally:
                edge.close()
        finally:
            router.close()
    big = results.get('100000000', {})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20   # KiB -> GiB
    print(json.dumps({'sizes': results, 'delta_ratio': big.get('delta_ratio'),
                      'skipped': skipped, 'quick': args.quick, 'link': 'tls loopback',
                      'peak_rss_gib': round(peak, 2), 'edge_peak_rss_gib': round(edge_peak, 2),
                      'verify': VERIFY[0], 'cpu_wake_latency_us':
                      wake.us if wake is not None and wake.held else None}))


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


if __name__ == '__main__':
    main()
