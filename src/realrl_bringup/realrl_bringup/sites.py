"""Cloud-edge deployments: which nodes of a graph run at which site (no ROS, no zenoh here).

A graph may name its sites and give each node a ``site``:

    sites:
      cloud: {connect: tls/cloud.example.org:7447}   # the router every site connects to
      lab_a: {connect: tls/cloud.example.org:7447}
    nodes:
      - {name: router, package: realrl_bridge, executable: router, site: cloud, ...}
      - {name: bridge, package: realrl_bridge, executable: bridge, site: lab_a, ...}
      ...

``realrl train --config graph.yaml --site lab_a`` then starts only lab_a's nodes (the whole
graph is still validated, so references between sites are checked). Rules, checked here:
with a ``sites`` section every node names one of them; without one no node may; each site
of a graph with several sites runs a bridge node (role ``bridge``) that connects to its
site's router; a site runs at most one router node (role ``router``).
"""
from __future__ import annotations

from dataclasses import dataclass

from realrl_common.config import ConfigError, build_config, check


@dataclass(frozen=True)
class SiteSpec:
    """One site of a deployment."""

    connect: str
    """The TLS endpoint of the Zenoh router this site's bridge connects to."""

    def __post_init__(self):
        check(self.connect.startswith('tls/'),
              f"connect must be the router's TLS endpoint 'tls/<host>:<port>', got "
              f'{self.connect!r}')


def site_specs(sites: dict) -> dict[str, SiteSpec]:
    """The ``sites`` section as SiteSpec objects (validated)."""
    out = {}
    for name, values in sites.items():
        if not isinstance(values, dict):
            raise ConfigError(f'sites.{name}: expected a mapping with connect: tls/<host>:<port>')
        out[name] = build_config(SiteSpec, values, where=f'sites.{name}')
    return out


def check_sites(graph) -> None:
    """Raise ConfigError if the nodes' sites and the ``sites`` section disagree."""
    sites = site_specs(graph.spec.sites)
    if not sites:
        for node in graph.nodes:
            if node.site:
                raise ConfigError(f'node {node.label}: site {node.site!r} but the graph has no '
                                  f'sites section; add sites: {{{node.site}: {{connect: '
                                  f'tls/<router host>:<port>}}}} or remove site')
        return
    for node in graph.nodes:
        if node.site not in sites:
            raise ConfigError(f'node {node.label}: site must be one of {sorted(sites)}, got '
                              f'{node.site!r}')
    for name, site in sites.items():
        nodes = [n for n in graph.nodes if n.site == name]
        roles = [graph.role(n) for n in nodes]
        check(roles.count('router') <= 1, f'site {name!r} runs {roles.count("router")} router '
                                          f'nodes; one is enough')
        bridges = [n for n in nodes if graph.role(n) == 'bridge']
        if len(sites) > 1 and not bridges:
            raise ConfigError(f'site {name!r} has no bridge node; add one (package '
                              f'realrl_bridge, executable bridge, site: {name})')
        _check_weights_reach(graph, name, nodes, bridges)
        for node in bridges:
            connect = graph.configs[node.fqn].connect
            if connect != site.connect:
                raise ConfigError(f'node {node.label}: connect {connect!r} differs from site '
                                  f'{name!r} connect {site.connect!r}; make them the same')


def _check_weights_reach(graph, name: str, nodes: list, bridges: list) -> None:
    """A site whose policy learns from a learner at another site gets its weights through
    its bridge (``weights``), and the learner's bridge serves them."""
    learners = [n for n in graph.nodes if graph.role(n) == 'learner']
    policies = [n for n in nodes if graph.role(n) == 'policy'
                and not getattr(graph.configs[n.fqn], 'weights_file', '')]
    if not policies or not learners or any(n.site == name for n in learners):
        return
    if not any(graph.configs[b.fqn].weights for b in bridges):
        raise ConfigError(f'node {policies[0].label} at site {name!r} learns from the '
                          f'learner at site {learners[0].site!r}, but the bridge of {name!r} '
                          f'carries no weights; add weights: {{topic: /learner/weights}} to '
                          f'it and to the bridge of {learners[0].site!r}')
    there = [n for n in graph.nodes if n.site == learners[0].site
             and graph.role(n) == 'bridge' and graph.configs[n.fqn].weights]
    if not there:
        raise ConfigError(f'the bridge of site {learners[0].site!r} carries no weights, so the '
                          f'policy at {name!r} never gets any; add weights: '
                          f'{{topic: /learner/weights}} to it')


def nodes_of_site(graph, site: str) -> tuple:
    """The nodes ``realrl train --site site`` starts."""
    sites = site_specs(graph.spec.sites)
    if site not in sites:
        raise ConfigError(f'--site {site!r}: the graph has sites {sorted(sites) or "none"}')
    return tuple(n for n in graph.nodes if n.site == site)
