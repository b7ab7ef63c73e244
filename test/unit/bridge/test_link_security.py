"""Mutual TLS and per-site ACL on a real Zenoh router and real client sessions (127.0.0.1)."""
from __future__ import annotations

import datetime as dt
import time

import pytest
import zenoh
from _zenoh_fixtures import Inbox, edge, put_until, site_edge, tls_router

from realrl_bridge import certs, link

KEYS = link.Keys()


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return certs.make_folder(tmp_path_factory.mktemp('certs'), ['lab_a', 'lab_b'])


def test_cert_folder_layout_and_cli(tmp_path):
    assert certs.main([str(tmp_path), '--site', 'lab_x', '--router-host', '10.0.0.1']) == 0
    for rel in ('ca.pem', 'ca.key', 'router.pem', 'router.key', 'sites/lab_x.pem',
                'sites/lab_x.key'):
        assert (tmp_path / rel).is_file(), rel
    assert (tmp_path / 'sites/lab_x.key').stat().st_mode & 0o077 == 0
    ca_before = (tmp_path / 'ca.pem').read_bytes()
    certs.main([str(tmp_path), '--site', 'lab_y'])
    assert (tmp_path / 'ca.pem').read_bytes() == ca_before   # the CA is kept
    with pytest.raises(SystemExit):
        certs.main([str(tmp_path), '--site', 'bad/name'])


def test_good_certificate_exchanges_data_both_ways(folder):
    with tls_router(folder) as (router, endpoint), site_edge(endpoint, folder, 'lab_a') as a:
        up, down, weights = Inbox(), Inbox(), Inbox()
        router.declare_subscriber(KEYS.robot('arm0', '**'), up)
        a.declare_subscriber(KEYS.robot('arm0', 'cmd'), down)
        a.declare_subscriber(KEYS.weights('**'), weights)
        assert put_until(a, KEYS.robot('arm0', 'transition'), up)
        assert put_until(router, KEYS.robot('arm0', 'cmd'), down)
        assert put_until(router, KEYS.weights('policy', 'latest'), weights)


@pytest.mark.parametrize('case', ['no_cert', 'other_ca', 'expired'])
def test_router_refuses_clients_without_a_valid_certificate(folder, tmp_path, case):
    if case == 'no_cert':
        cert = key = None
    elif case == 'other_ca':
        other = certs.make_folder(tmp_path / 'other', ['lab_a'])
        cert, key = other.site('lab_a').cert, other.site('lab_a').key
    else:
        old = certs.issue(folder.ca, tmp_path / 'old.pem', tmp_path / 'old.key', 'lab_a',
                          not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10),
                          valid_days=1)
        cert, key = old.cert, old.key
    with tls_router(folder) as (router, endpoint):
        up = Inbox()
        router.declare_subscriber(KEYS.robot('**'), up)
        with pytest.raises(zenoh.ZError):
            with edge(endpoint, folder.ca.cert, cert, key) as s:
                s.put(KEYS.robot('arm0', 'transition'), b'x')   # never reached if refused
        time.sleep(0.5)
        assert up.keys() == set()
        # the same router still serves a good site afterwards
        with site_edge(endpoint, folder, 'lab_a') as a:
            assert put_until(a, KEYS.robot('arm0', 'ok'), up)


def test_acl_keeps_a_site_to_its_own_robots(folder):
    with tls_router(folder) as (router, endpoint), \
            site_edge(endpoint, folder, 'lab_a') as a, site_edge(endpoint, folder, 'lab_b') as b, \
            site_edge(endpoint, folder, 'lab_a') as a_spy:
        at_cloud, spy, own = Inbox(), Inbox(), Inbox()
        router.declare_subscriber(KEYS.prefix + '/**', at_cloud)
        # a second session of lab_a (a session hears its own puts locally, past any ACL)
        a_spy.declare_subscriber(KEYS.robot('arm1', '**'), spy)    # lab_b's robot
        a_spy.declare_subscriber(KEYS.robot('arm0', '**'), own)
        # lab_a writes to lab_b's robot and to the weights, then to its own robot: the
        # session is ordered, so once its own key arrived the others would have too
        for _ in range(3):
            a.put(KEYS.robot('arm1', 'transition'), b'forged')
            a.put(KEYS.weights('policy', 'latest'), b'forged')
        assert put_until(a, KEYS.robot('arm2', 'transition'), at_cloud)
        assert put_until(b, KEYS.robot('arm1', 'transition'), at_cloud)
        assert put_until(router, KEYS.robot('arm1', 'cmd'), at_cloud)
        assert put_until(router, KEYS.robot('arm0', 'cmd'), own)   # a_spy is connected
        time.sleep(0.3)
        assert (b'forged') not in [p for _, p in at_cloud.items]
        assert spy.keys() == set()   # lab_a cannot subscribe to lab_b's robot either


def test_router_spec_rejects_bad_input(folder):
    tls = link.TlsFiles(folder.ca.cert, folder.router.cert, folder.router.key)
    with pytest.raises(ValueError, match='one site'):
        link.RouterSpec('tls/127.0.0.1:1', tls, (link.Site('a', ('r',)), link.Site('b', ('r',))))
    with pytest.raises(ValueError, match='TLS'):
        link.RouterSpec('tcp/127.0.0.1:1', tls, ())
    with pytest.raises(ValueError, match='robot id'):
        link.Site('a', ('r/x',))
    with pytest.raises(ValueError, match='no file'):
        link.TlsFiles(folder.ca.cert, folder.root / 'missing.pem', None)
    with pytest.raises(ValueError, match='TLS'):
        link.edge_config('tcp/127.0.0.1:1', link.TlsFiles(folder.ca.cert, None, None))
