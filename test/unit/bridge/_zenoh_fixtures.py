"""Shared set-up of the bridge tests: certificates, a TLS router on 127.0.0.1, edge sessions.

Every session opened here is closed in a ``finally`` (an open Zenoh session keeps the test
process alive).
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time

import zenoh

from realrl_bridge import certs, link

SITES = (link.Site('lab_a', ('arm0', 'arm2')), link.Site('lab_b', ('arm1',)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def tls_router(folder: certs.CertFolder, port: int | None = None, sites=SITES,
               cloud_names=()):
    """A Zenoh router with mutual TLS and the sites' ACL; yields (session, endpoint)."""
    endpoint = f'tls/127.0.0.1:{port or free_port()}'
    spec = link.RouterSpec(listen=endpoint, sites=sites, cloud_names=cloud_names,
                           tls=link.TlsFiles(folder.ca.cert, folder.router.cert,
                                             folder.router.key))
    session = zenoh.open(link.to_zenoh(link.router_config(spec)))
    try:
        yield session, endpoint
    finally:
        session.close()


@contextlib.contextmanager
def edge(endpoint: str, ca, cert=None, key=None):
    """An edge client session with the given TLS material."""
    session = zenoh.open(link.to_zenoh(link.edge_config(
        endpoint, link.TlsFiles(ca, cert, key), connect_timeout_ms=3000)))
    try:
        yield session
    finally:
        session.close()


def site_edge(endpoint: str, folder: certs.CertFolder, site: str):
    """An edge session of one site of ``folder``."""
    return edge(endpoint, folder.ca.cert, folder.site(site).cert, folder.site(site).key)


class Inbox:
    """Samples received by a subscriber callback, with a wait."""

    def __init__(self):
        self.items: list[tuple[str, bytes]] = []
        self._cv = threading.Condition()

    def __call__(self, sample: zenoh.Sample) -> None:
        with self._cv:
            self.items.append((str(sample.key_expr), sample.payload.to_bytes()))
            self._cv.notify_all()

    def wait_for(self, key: str, timeout: float = 10.0) -> bool:
        """True once a sample on ``key`` has arrived."""
        with self._cv:
            return self._cv.wait_for(lambda: any(k == key for k, _ in self.items), timeout)

    def keys(self) -> set[str]:
        """Keys received so far."""
        with self._cv:
            return {k for k, _ in self.items}


def put_until(session: zenoh.Session, key: str, inbox: Inbox, timeout: float = 10.0) -> bool:
    """Put on ``key`` repeatedly until ``inbox`` has it (subscriptions propagate async)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.put(key, b'x')
        if inbox.wait_for(key, 0.2):
            return True
    return False
