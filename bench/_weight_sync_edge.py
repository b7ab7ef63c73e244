"""The edge end of bench/weight_sync.py, in a process of its own (as a site is a machine of its
own: the cloud's sender and this receiver share no interpreter lock).

argv: router endpoint, CA certificate, site certificate, site key. Reads one JSON command per
line on stdin and answers one JSON line on stdout per command (times are
``time.monotonic()``, the same clock as the parent's on this host):

- ``{"cmd": "raw", "key": K, "n": N}``: subscribes to ``K/**`` and to ``K-probe``; answers
  ``{"probed": t}`` once a probe arrived (the subscription reached the router), then
  ``{"done": t}`` when the N-th sample arrived (payloads are not read, as a link's own
  figure does not read them).
- ``{"cmd": "open", "stream": S, "verify": bool}``: a ``WeightReceiver`` on S (the pool of
  receive buffers is this process's, shared by every receiver it opens) -> ``{"open": S}``.
- ``{"cmd": "wait", "stream": S, "version": V, "names": [...]}`` -> ``{"done": t,
  "digests": {name: digest}}`` once the receiver holds V (t: when its ``on_weights`` was
  called; digests of the named tensors, for the parent to check the bytes), or
  ``{"error": ...}`` after 900 s.
- ``{"cmd": "close", "stream": S}`` -> ``{"closed": S}``; ``{"cmd": "rss"}`` -> ``{"rss_gib":
  peak}``; end of input ends the process.
"""
from __future__ import annotations

import json
import resource
import sys
import threading
import time

import _util  # noqa: F401  (puts the workspace's packages on sys.path)
import zenoh
from realrl_bridge.receive_buffers import ReceiveBuffers
from realrl_bridge.weight_sync import WeightReceiver
from realrl_bridge.weights_codec import digest

from realrl_bridge import link


def answer(**fields) -> None:
    print(json.dumps(fields), flush=True)


def raw(session: zenoh.Session, key: str, n: int) -> None:
    count, done, probed = [0], threading.Event(), threading.Event()

    def on_sample(_sample):
        count[0] += 1
        if count[0] == n:
            done.set()
    sub = session.declare_subscriber(f'{key}/**', on_sample)
    probe = session.declare_subscriber(f'{key}-probe', lambda s: probed.set())
    try:
        probed.wait()
        answer(probed=time.monotonic())
        if not done.wait(900):
            answer(error=f'{count[0]} of {n} samples arrived')
            return
        answer(done=time.monotonic())
    finally:
        probe.undeclare()
        sub.undeclare()


def main() -> None:
    endpoint, ca, cert, key = sys.argv[1:5]
    session = zenoh.open(link.to_zenoh(link.edge_config(endpoint, link.TlsFiles(ca, cert, key))))
    buffers = ReceiveBuffers()
    receivers: dict[str, WeightReceiver] = {}
    held: dict[str, dict[int, float]] = {}        # stream -> version -> when it was held
    arrived = threading.Condition()

    def record(when: dict[int, float], version: int) -> None:
        with arrived:
            when.setdefault(version, time.monotonic())
            arrived.notify_all()
    try:
        for line in sys.stdin:
            c = json.loads(line)
            if c['cmd'] == 'raw':
                raw(session, c['key'], c['n'])
            elif c['cmd'] == 'open':
                receivers[c['stream']] = WeightReceiver(
                    session, c['stream'], verify=c.get('verify', True), buffers=buffers,
                    on_weights=lambda v, _state, when=held.setdefault(c['stream'], {}):
                    record(when, v))
                answer(open=c['stream'])
            elif c['cmd'] == 'wait':
                when = held[c['stream']]
                with arrived:
                    if not arrived.wait_for(lambda: c['version'] in when, 900):
                        answer(error=f"version {c['version']} did not arrive")
                        continue
                state = receivers[c['stream']].state.state
                answer(done=when[c['version']],
                       digests={n: digest(state[n]) for n in c['names']})
            elif c['cmd'] == 'close':
                receivers.pop(c['stream']).close()
                answer(closed=c['stream'], reused=buffers.reused)
            elif c['cmd'] == 'rss':
                answer(rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    finally:
        for rx in receivers.values():
            rx.close()
        session.close()


if __name__ == '__main__':
    main()
