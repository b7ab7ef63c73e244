"""Zenoh configurations of the cloud router and the edge sites: mutual TLS and per-site ACL.

The cloud runs a Zenoh router (``mode: router``) that listens on one TLS endpoint. Each site
(a lab with robots) is a Zenoh *client* that connects outward to it; an edge listens on no
port and does no scouting. Both sides present certificates of the project's CA
(``realrl_bridge.certs``), and the router refuses a client without one.

Key expressions (``prefix`` defaults to ``realrl``):

    <prefix>/robot/<robot_id>/**    a robot's data, both directions (transitions, status, ...)
    <prefix>/weights/**             weights, published by the cloud, read by every site

The router's access control is keyed by the certificate's common name (the site name): a
site may publish, subscribe, query and answer only on its own robots' keys, and may only
read (subscribe, query) the weights. Everything else is denied. Names in ``cloud_names``
(e.g. a learner connecting as a client) may do everything under the prefix. The router's
own session (the cloud side, when the learner opens the router in-process) is local and not
filtered.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from realrl_bridge.certs import NAME_RE

DATA_MESSAGES = ('put', 'delete', 'declare_subscriber', 'query', 'declare_queryable', 'reply',
                 'liveliness_token', 'declare_liveliness_subscriber', 'liveliness_query')
"""Every message kind Zenoh's ACL filters."""


@dataclass(frozen=True)
class Site:
    """One edge site: its certificate common name and the robots it runs."""

    name: str
    """The site's certificate common name (``python -m realrl_bridge.certs --site NAME``)."""
    robot_ids: tuple[str, ...]
    """Robots of this site; it may use only their keys."""

    def __post_init__(self):
        if not NAME_RE.match(self.name):
            raise ValueError(f'site name {self.name!r}: use 1-64 letters, digits, _ or -')
        if not self.robot_ids:
            raise ValueError(f'site {self.name!r}: robot_ids is empty; list its robots')
        for rid in self.robot_ids:
            if not NAME_RE.match(rid):
                raise ValueError(f'site {self.name!r}: robot id {rid!r} is not a valid key '
                                 f'chunk; use letters, digits, _ or -')


@dataclass(frozen=True)
class Keys:
    """The key expressions of one deployment."""

    prefix: str = 'realrl'

    def robot(self, robot_id: str, *rest: str) -> str:
        """The key of a robot's data (``rest`` are further chunks)."""
        return '/'.join((self.prefix, 'robot', robot_id) + rest)

    def weights(self, *rest: str) -> str:
        """The key of weights data."""
        return '/'.join((self.prefix, 'weights') + rest)


@dataclass(frozen=True)
class TlsFiles:
    """A party's TLS material: the CA that signs the peers, its own certificate and key."""

    ca: Path
    cert: Path | None
    key: Path | None

    def __post_init__(self):
        for name in ('ca', 'cert', 'key'):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f'TLS {name}: no file at {path}; generate the certificates '
                                 f'with python -m realrl_bridge.certs')


@dataclass(frozen=True)
class RouterSpec:
    """What the cloud router is: where it listens, whom it lets in, and what they may do."""

    listen: str
    """TLS endpoint, e.g. 'tls/127.0.0.1:7447' (the host must be in the router certificate)."""
    tls: TlsFiles
    sites: tuple[Site, ...]
    cloud_names: tuple[str, ...] = ()
    """Certificate common names with full access under the prefix (cloud-side clients)."""
    keys: Keys = field(default_factory=Keys)

    def __post_init__(self):
        if not self.listen.startswith('tls/'):
            raise ValueError(f'listen {self.listen!r}: the router listens only on TLS; '
                             f"write 'tls/<host>:<port>'")
        if self.tls.cert is None or self.tls.key is None:
            raise ValueError('router TLS: cert and key are required')
        owner: dict[str, str] = {}
        for site in self.sites:
            for rid in site.robot_ids:
                if rid in owner and owner[rid] != site.name:
                    raise ValueError(f'robot {rid!r} is listed by sites {owner[rid]!r} and '
                                     f'{site.name!r}; a robot belongs to one site')
                owner[rid] = site.name
        names = [s.name for s in self.sites] + list(self.cloud_names)
        if len(set(names)) != len(names):
            raise ValueError(f'site and cloud names must be unique, got {names}')


# Shared memory is off on both sides: cloud and edge are different hosts, and on one host
# Zenoh would otherwise move large payloads through shared memory instead of the TLS link.


def _scouting_off() -> dict:
    return {'multicast': {'enabled': False}, 'gossip': {'enabled': False}}


LEASE_MS = 4000
"""A link silent this long is closed (keep-alives every quarter of it), so a cut is noticed
in seconds and the edge starts reconnecting; Zenoh's own default is 10 s."""


def _tx(lease_ms: int) -> dict:
    return {'lease': int(lease_ms), 'keep_alive': 4}


def access_control(spec: RouterSpec) -> dict:
    """The router's ``access_control`` section (deny by default)."""
    keys = spec.keys
    rules = [
        {'id': 'weights_ask', 'messages': ['declare_subscriber', 'query'],
         'flows': ['ingress'], 'permission': 'allow', 'key_exprs': [keys.weights('**')]},
        {'id': 'weights_receive', 'messages': ['put', 'delete', 'reply'],
         'flows': ['egress'], 'permission': 'allow', 'key_exprs': [keys.weights('**')]},
    ]
    subjects = []
    policies = []
    for site in spec.sites:
        rule = f'robots_of_{site.name}'
        rules.append({'id': rule, 'messages': list(DATA_MESSAGES),
                      'flows': ['ingress', 'egress'], 'permission': 'allow',
                      'key_exprs': [keys.robot(r, '**') for r in site.robot_ids]})
        subjects.append({'id': f'site_{site.name}', 'cert_common_names': [site.name]})
        policies.append({'id': f'policy_{site.name}', 'subjects': [f'site_{site.name}'],
                         'rules': [rule, 'weights_ask', 'weights_receive']})
    if spec.cloud_names:
        rules.append({'id': 'cloud_all', 'messages': list(DATA_MESSAGES),
                      'flows': ['ingress', 'egress'], 'permission': 'allow',
                      'key_exprs': [f'{keys.prefix}/**']})
        subjects.append({'id': 'cloud', 'cert_common_names': list(spec.cloud_names)})
        policies.append({'id': 'policy_cloud', 'subjects': ['cloud'], 'rules': ['cloud_all']})
    return {'enabled': True, 'default_permission': 'deny', 'rules': rules,
            'subjects': subjects, 'policies': policies}


def router_config(spec: RouterSpec, *, lease_ms: int = LEASE_MS) -> dict:
    """The cloud router's Zenoh configuration, as a plain mapping."""
    return {
        'mode': 'router',
        'listen': {'endpoints': [spec.listen]},
        'connect': {'endpoints': []},
        'scouting': _scouting_off(),
        'transport': {'shared_memory': {'enabled': False},
                      'link': {'protocols': ['tls'], 'tx': _tx(lease_ms), 'tls': {
            'root_ca_certificate': str(spec.tls.ca),
            'listen_certificate': str(spec.tls.cert),
            'listen_private_key': str(spec.tls.key),
            'enable_mtls': True,
            'close_link_on_expiration': True,
        }}},
        'access_control': access_control(spec),
    }


def edge_config(connect: str, tls: TlsFiles, *, connect_timeout_ms: int = 5000,
                lease_ms: int = LEASE_MS) -> dict:
    """An edge site's Zenoh configuration: a client that connects out to the router.

    It listens on nothing and scouts nothing. When the link drops it keeps trying to
    reconnect (every second at most), and carries on where it was once it is back. A
    TlsFiles without cert/key gives a client that presents no certificate (only useful to
    show that the router refuses it).
    """
    if not connect.startswith('tls/'):
        raise ValueError(f"connect {connect!r}: edges connect over TLS; write "
                         f"'tls/<router host>:<port>'")
    tls_section = {'root_ca_certificate': str(tls.ca), 'verify_name_on_connect': True,
                   'close_link_on_expiration': True}
    if tls.cert is not None and tls.key is not None:
        tls_section.update({'connect_certificate': str(tls.cert),
                            'connect_private_key': str(tls.key), 'enable_mtls': True})
    return {
        'mode': 'client',
        'connect': {'endpoints': [connect], 'timeout_ms': connect_timeout_ms,
                    'retry': {'period_init_ms': 250, 'period_max_ms': 1000,
                              'period_increase_factor': 2}},
        'listen': {'endpoints': []},
        'scouting': _scouting_off(),
        'transport': {'shared_memory': {'enabled': False},
                      'link': {'protocols': ['tls'], 'tx': _tx(lease_ms),
                               'tls': tls_section}},
    }


def to_zenoh(config: dict):
    """A ``zenoh.Config`` from one of the mappings above (zenoh is imported here only)."""
    import zenoh
    return zenoh.Config.from_json5(json.dumps(config))
