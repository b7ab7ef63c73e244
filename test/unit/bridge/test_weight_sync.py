"""Weight sync between a cloud router and an edge site over real Zenoh sessions (mutual TLS)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from _zenoh_fixtures import site_edge, tls_router
from realrl_bridge.delay_proxy import DelayProxy
from realrl_bridge.weight_sync import WEIGHTS_PRIORITY, WeightReceiver, WeightServer, _announced
from realrl_bridge.weights_codec import encode

from realrl_bridge import certs

CHUNK = 64 * 1024


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return certs.make_folder(tmp_path_factory.mktemp('certs'), ['lab_a', 'lab_b'])


def make_state(n_tensors=40, size=20000, seed=0):
    rng = np.random.default_rng(seed)
    return {f'l{i}': rng.standard_normal(size).astype(np.float32) for i in range(n_tensors)}


def wait_under_way(rx, chunks=5):
    """Until ``rx`` has ``chunks`` chunks of its first version (a paced transfer under way)."""
    deadline = time.monotonic() + 30
    while rx.state.chunks_received < chunks and time.monotonic() < deadline:
        time.sleep(0.01)
    assert chunks <= rx.state.chunks_received and rx.state.version == 0


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize('prepare_ahead', [0, 2])   # chunks gathered in line, or ahead
def test_receiver_gets_every_version_exactly(folder, prepare_ahead):
    with tls_router(folder) as (router, endpoint), site_edge(endpoint, folder, 'lab_a') as edge:
        server = WeightServer(router, chunk_size=CHUNK, prepare_ahead=prepare_ahead)
        rx = WeightReceiver(edge)
        try:
            s1 = make_state()
            server.publish(s1)
            assert rx.wait_version(1, 30)
            assert_same(rx.state.state, s1)
            s2 = make_state(seed=1)
            server.publish(s2)
            assert rx.wait_version(2, 30)
            assert_same(rx.state.state, s2)
        finally:
            rx.close()
            server.close()


@pytest.mark.parametrize('encoding, delta, announce, asked', [
    ('raw', True, True, (0, 1)),     # the first from the announcement; then a delta, asked for
    ('raw', False, True, (0, 0)),    # no deltas: every version from its announcement
    ('raw', True, False, (1, 2)),    # not announced: asked for each time
    ('bf16', False, True, (1, 2)),   # bf16 is encoded when asked for, so never announced
])
def test_a_full_versions_manifest_comes_with_its_announcement(folder, encoding, delta,
                                                                announce, asked):
    """A receiver that would fetch a full version asks for its chunks at once, on the
    manifest announced with it: one round trip less than asking for the manifest first."""
    with tls_router(folder) as (router, endpoint), site_edge(endpoint, folder, 'lab_a') as edge:
        server = WeightServer(router, chunk_size=CHUNK, encoding=encoding, delta=delta,
                              announce_manifest=announce)
        rx = WeightReceiver(edge)
        try:
            for version, seed in ((1, 0), (2, 1)):
                state = make_state(seed=seed)
                server.publish(state)
                assert rx.wait_version(version, 30)
                if encoding == 'raw':
                    assert_same(rx.state.state, state)
                assert server.asked['manifest'] == asked[version - 1]
        finally:
            rx.close()
            server.close()


def test_an_announcement_without_a_usable_manifest_leaves_it_to_be_asked_for():
    good = encode(make_state(n_tensors=3), 4, chunk_size=CHUNK, origin='ab').manifest
    assert _announced({'version': 4, 'manifest': good.__dict__}, 4) == (good, True)
    assert _announced({'version': 4, 'manifest': good.__dict__, 'delta': False}, 4)[1] is False
    for note in ({'version': 4}, {'version': 4, 'manifest': {'tensors': []}},
                 {'version': 4, 'manifest': 'not a manifest'},
                 {'version': 5, 'manifest': good.__dict__}):          # another version's
        assert _announced(note, note['version']) is None
    delta = encode(make_state(n_tensors=3), 4, base=3, base_digests={}, chunk_size=CHUNK).manifest
    assert _announced({'version': 4, 'manifest': delta.__dict__}, 4) is None   # not full


def test_bad_sizes_are_refused_by_name():
    with pytest.raises(ValueError, match='prepare_ahead must be >= 0 chunks'):
        WeightServer(None, prepare_ahead=-1)
    with pytest.raises(ValueError, match='window and inflight must be >= 1'):
        WeightReceiver(None, window=0)


def test_lost_and_corrupted_chunks_are_asked_for_again(folder):
    seen: set = set()

    def fault(version, index, data):
        if index in seen:
            return data
        seen.add(index)
        if index % 5 == 0:
            return None                     # lost the first time
        if index % 7 == 0:
            bad = bytearray(data)
            bad[len(bad) // 2] ^= 0x01      # one flipped bit the first time
            return bytes(bad)
        return data

    with tls_router(folder) as (router, endpoint), site_edge(endpoint, folder, 'lab_a') as edge:
        server = WeightServer(router, chunk_size=CHUNK, fault=fault)
        rx = WeightReceiver(edge, retry_s=0.2)
        try:
            state = make_state()
            server.publish(state)
            assert rx.wait_version(1, 60)
            assert_same(rx.state.state, state)
            n = server.encoded(1, 0).manifest.n_chunks
            assert rx.state.rejected == len([i for i in range(n) if i % 7 == 0 and i % 5])
            assert rx.state.chunks_received == n + rx.state.rejected
        finally:
            rx.close()
            server.close()


def test_delta_sends_only_changed_tensors(folder):
    with tls_router(folder) as (router, endpoint), site_edge(endpoint, folder, 'lab_a') as edge:
        server = WeightServer(router, chunk_size=CHUNK)
        rx = WeightReceiver(edge)
        try:
            s1 = make_state()
            server.publish(s1)
            assert rx.wait_version(1, 30)
            full_bytes = server.bytes_sent
            s2 = {k: v.copy() for k, v in s1.items()}
            s2['l3'] *= 0.5
            s2['l30'] += 0.1                  # 2 of 40 tensors: 5 %
            server.publish(s2)
            assert rx.wait_version(2, 30)
            assert_same(rx.state.state, s2)
            delta_bytes = server.bytes_sent - full_bytes
            assert delta_bytes == s2['l3'].nbytes + s2['l30'].nbytes
            assert delta_bytes / full_bytes <= 0.06
        finally:
            rx.close()
            server.close()


def test_resumes_after_the_link_drops_mid_transfer(folder):
    """The edge reaches the router through a relay that is cut while chunks flow."""
    with tls_router(folder) as (router, endpoint):
        port = int(endpoint.rsplit(':', 1)[1])
        with DelayProxy(('127.0.0.1', port)) as proxy, \
                site_edge(f'tls/127.0.0.1:{proxy.port}', folder, 'lab_a') as edge:
            # 3.2 MB paced at 2 MB/s: the cut lands mid-transfer
            server = WeightServer(router, chunk_size=CHUNK, rate_bytes_s=2e6)
            rx = WeightReceiver(edge, retry_s=0.2, request_timeout_s=5.0)
            try:
                state = make_state()
                server.publish(state)
                n = server.encoded(1, 0).manifest.n_chunks
                deadline = time.monotonic() + 30
                while rx.state.chunks_received < n // 3 and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert rx.state.chunks_received < n     # still under way
                proxy.refuse = True
                proxy.cut()
                time.sleep(1.0)
                had = n - len(rx.state.partial.missing())
                proxy.refuse = False
                assert rx.wait_version(1, 60)
                assert_same(rx.state.state, state)
                assert proxy.connections >= 2          # it reconnected
                assert had >= n // 3
                # resumed, not restarted: what it had was not fetched again
                assert rx.state.chunks_received < n + had // 2
            finally:
                rx.close()
                server.close()


def test_a_server_restarted_mid_transfer_is_not_mixed_with_the_one_before(folder):
    """The cloud's server restarts while an edge is fetching version 1 and publishes its own
    version 1: the edge must end with the new server's tensors, not a mix of both."""
    with tls_router(folder) as (router, endpoint), site_edge(endpoint, folder, 'lab_a') as edge:
        before = WeightServer(router, chunk_size=CHUNK, rate_bytes_s=2e6)
        # asks again 1 s after the old server went quiet: the new one has published by then
        rx = WeightReceiver(edge, retry_s=1.0, request_timeout_s=5.0)
        after = None
        try:
            before.publish(make_state())
            wait_under_way(rx)
            before.close()
            time.sleep(0.3)       # the receiver's round ends unanswered; it waits to ask again
            after = WeightServer(router, chunk_size=CHUNK)
            state = make_state(seed=9)
            after.publish(state)
            assert rx.wait_version(1, 60)
            assert_same(rx.state.state, state)
            assert rx.state.refused == 0
        finally:
            rx.close()
            before.close()
            if after is not None:
                after.close()


def test_latest_version_wins(folder):
    with tls_router(folder) as (router, endpoint), site_edge(endpoint, folder, 'lab_a') as edge:
        got = []
        server = WeightServer(router, chunk_size=CHUNK, rate_bytes_s=2e6)
        rx = WeightReceiver(edge, on_weights=lambda v, s: got.append(v))
        try:
            server.publish(make_state())
            wait_under_way(rx)
            s3 = make_state(seed=3)
            server.publish(make_state(seed=2))
            server.publish(s3)
            assert rx.wait_version(3, 60)
            assert_same(rx.state.state, s3)
            assert got == [3]
        finally:
            rx.close()
            server.close()


def test_malformed_requests_get_errors_and_the_server_goes_on(folder):
    import json as _json
    with tls_router(folder) as (router, endpoint), site_edge(endpoint, folder, 'lab_a') as edge:
        server = WeightServer(router, chunk_size=CHUNK)
        try:
            state = make_state(n_tensors=4)
            server.publish(state)
            root = 'realrl/weights/policy'
            errors = []
            chunks = f'{root}/chunks/{server.origin}'
            for selector, payload in ((f'{chunks}/x/0/**', '[0]'),
                                      (f'{chunks}/1/0/**', None),
                                      (f'{chunks}/1/0/**', 'not json'),
                                      (f'{root}/manifest', None),
                                      (f'{chunks}/1/0/**', '[99999]'),
                                      (f'{root}/digests/1', None),
                                      (f'{root}/digests/{server.origin}/x', None)):
                replies = list(edge.get(selector, payload=payload, timeout=10))
                errors.append([r.err is not None for r in replies])
            assert errors == [[True]] * 7
            for selector in (f'{root}/chunks/other/1/0/**', f'{root}/digests/other/1'):
                reply, = edge.get(selector, payload='[0]', timeout=10)
                assert reply.err.payload.to_bytes() == b'superseded'   # another server's
            rx = WeightReceiver(edge)
            try:
                assert rx.wait_version(1, 30)
                assert_same(rx.state.state, state)
            finally:
                rx.close()
            latest = _json.loads(list(edge.get(f'{root}/latest', timeout=10))[0]
                                 .ok.payload.to_bytes())
            assert latest['version'] == 1 and latest['delta'] is True
            assert latest['manifest'] == server.encoded(1, 0).manifest.__dict__
            chunk = list(edge.get(f'{chunks}/1/0/**', payload='[0]', timeout=10,
                                  priority=WEIGHTS_PRIORITY))[0].ok
            assert chunk.priority == WEIGHTS_PRIORITY   # a reply goes at its query's priority
        finally:
            server.close()


def test_close_ends_a_request_the_cloud_never_answers(folder):
    """A request in flight when the receiver closes ends then, not at its (long) timeout."""
    import threading
    held = []
    with tls_router(folder) as (router, endpoint), site_edge(endpoint, folder, 'lab_a') as edge:
        silent = router.declare_queryable('realrl/weights/policy/latest', held.append)
        rx = WeightReceiver(edge, request_timeout_s=600.0)
        try:
            deadline = time.monotonic() + 30
            while not held and time.monotonic() < deadline:
                time.sleep(0.05)
            assert held, 'the receiver never asked for the latest version'
            closing = threading.Thread(target=rx.close, daemon=True)
            closing.start()
            closing.join(60)   # without cancelling, close waits out the 600 s request
            assert not closing.is_alive()
            assert not rx._worker.is_alive()
        finally:
            held.clear()
            silent.undeclare()
