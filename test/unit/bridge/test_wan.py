"""The emulated WAN: namespaces always removed, a rate limit and an added round trip.

Runs as root only (ip netns, tc); elsewhere it is skipped with the reason. The assertions are
lower bounds the emulator must impose (data cannot cross faster than the link allows).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from realrl_bridge import wan

pytestmark = pytest.mark.skipif(bool(wan.available()), reason=wan.available() or 'available')

ECHO = r'''
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], 0)); srv.listen(1)
print('ready', srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
while data := conn.recv(65536):
    conn.sendall(data)
'''

CLIENT = r'''
import json, socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rtts = []
for _ in range(5):
    t = time.perf_counter(); s.sendall(b'x'); s.recv(1); rtts.append(time.perf_counter() - t)
n = int(sys.argv[2]); blob = b'y' * n; got = 0
t = time.perf_counter(); s.sendall(blob)
while got < n:
    got += len(s.recv(1 << 20))
print(json.dumps({'rtt_s': min(rtts), 'echo_s': time.perf_counter() - t}))
'''


def test_link_adds_latency_and_limits_rate():
    rate_mbit, rtt_ms, nbytes = 20.0, 80.0, 2_000_000
    with wan.WanLink(rate_mbit=rate_mbit, rtt_ms=rtt_ms, name='rrwant', subnet='10.213.1') as w:
        assert w.exists()
        echo = w.popen(w.cloud_ns, [sys.executable, '-c', ECHO, w.cloud_ip],
                       stdout=subprocess.PIPE, text=True)
        port = int(echo.stdout.readline().split()[1])
        proxy_port = w.delay_proxy(port)
        out = subprocess.run(['ip', 'netns', 'exec', w.edge_ns, sys.executable, '-c', CLIENT,
                              str(proxy_port), str(nbytes)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        figures = json.loads(out.stdout)
    assert not w.exists()
    assert figures['rtt_s'] >= rtt_ms / 1000 * 0.95
    # the echo crosses the shaped veth both ways, each at the rate (concurrently)
    assert figures['echo_s'] >= nbytes * 8 / (rate_mbit * 1e6) * 0.9


def test_namespaces_are_removed_when_the_block_fails():
    started = []
    with pytest.raises(RuntimeError, match='inside'):
        with wan.WanLink(name='rrwanf', subnet='10.213.2') as w:
            assert w.exists()
            started.append(w.popen(w.edge_ns, [sys.executable, '-c',
                                               'import time; time.sleep(60)']))
            raise RuntimeError('failure inside the block')
    assert not w.exists()
    assert started[0].poll() is not None      # the process in the namespace was stopped


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='rate_mbit'):
        wan.WanLink(rate_mbit=0)
    with pytest.raises(ValueError, match='name'):
        wan.WanLink(name='with-dash')
