"""The graph description: which nodes run, with which parameters, and when a run stops.

One YAML file (``config/*.yaml``) is read by both ``realrl`` and the ``launch/*.launch.py``
files, so the two ways of starting a graph cannot drift apart. Everything is checked here,
before any process starts: unknown keys, wrong types, parameters each node's own config
class rejects, and robot ids that no driver has.

What a node is (its role: driver, policy, reward, ...) and which config class checks its
parameters, each package registers itself (``realrl_common.plugins``, entry points
``realrl.nodes``); nothing here lists them, and nothing here imports ROS.
"""
from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from realrl_bringup.graph_checks import check_priorities, check_rewards_can_label
from realrl_bringup.graph_mode import resolve_mode, with_mode
from realrl_bringup.lease_keeper import LeaseSpec
from realrl_bringup.sites import check_sites, nodes_of_site
from realrl_common.config import ConfigError, build_config, check
from realrl_common.plugins import ROBOTS, NodeKind, node_kind, registered

DEFAULT_CONFIG = 'config/reach_sim.yaml'
"""The graph `realrl train` and `realrl check` read without --config."""
RESTART_POLICIES = ('never', 'on_failure')
TOP_LEVEL_VALUES = ('mode',)
"""Top-level keys --set takes without a section (``--set mode=sync``)."""
NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')


@dataclass(frozen=True)
class NodeSpec:
    """One node of a graph: what to start, where, and with which parameters."""

    name: str
    """ROS node name (unique within its namespace)."""
    package: str
    """colcon package that installs the executable."""
    executable: str
    """console_scripts entry of that package."""
    namespace: str = ''
    """ROS namespace without the leading slash ('' for the root)."""
    lifecycle: bool = False
    """Brought through configure -> activate by the launcher once it is up."""
    restart: str = 'never'
    """'on_failure': started again if it exits with an error or is killed; 'never'."""
    standby: bool = False
    """Keep a second process of it started and waiting with its code imported, so that a
    restart skips the imports (torch alone takes seconds); needs restart: on_failure."""
    parameters: dict = field(default_factory=dict)
    """The node's ROS parameters (nested mappings become dotted names)."""
    site: str = ''
    """The site it runs at, one of the graph's ``sites`` ('' when the graph has none)."""

    def __post_init__(self):
        check(bool(NAME.match(self.name)),
              f'name must be a ROS name like policy, got {self.name!r}')
        check(self.namespace == '' or bool(NAME.match(self.namespace)),
              f'namespace must be a ROS name like arm0 (no slashes), got {self.namespace!r}')
        check(self.restart in RESTART_POLICIES,
              f'restart must be one of {list(RESTART_POLICIES)}, got {self.restart!r}')
        check(not self.standby or self.restart == 'on_failure',
              f'standby: true keeps a process ready for a restart, but {self.name!r} is never '
              'restarted: set restart: on_failure, or remove standby')

    @property
    def fqn(self) -> str:
        return f'/{self.namespace}/{self.name}' if self.namespace else f'/{self.name}'

    @property
    def label(self) -> str:
        return self.fqn.lstrip('/').replace('/', '.')


@dataclass(frozen=True)
class StopSpec:
    """When a training run ends: the success rate to reach, or the time to give up at."""

    success_rate: float = 0.9
    """The run succeeds when this share of the last `window` episodes succeeded."""
    window: int = 20
    """Episodes the success rate is taken over."""
    max_wall_s: float = 900.0
    """The run stops, unsuccessful, after this many seconds."""

    def __post_init__(self):
        check(0 < self.success_rate <= 1,
              f'stop.success_rate must be in (0, 1], got {self.success_rate}')
        check(self.window > 0, f'stop.window must be > 0, got {self.window}')
        check(self.max_wall_s > 0, f'stop.max_wall_s must be > 0, got {self.max_wall_s}')


@dataclass(frozen=True)
class HostSpec:
    """How the machine that runs the graph (each site's machine, in a cloud-edge graph) is
    set while the run lasts; `realrl train` sets it and puts it back at its end."""

    cpu_wake_latency_us: int | None = None
    """Hold idle CPUs to wake within this many microseconds (``/dev/cpu_dma_latency``,
    realrl_common.scheduling.CpuWakeLatency; needs root). 0: idle CPUs poll and never sleep,
    what a control machine whose messages cross several processes each step wants (a
    cloud-edge step's round trip on an idle virtual machine: p50 95-106 -> 68 ms). None:
    the machine's own power management."""

    def __post_init__(self):
        check(self.cpu_wake_latency_us is None or self.cpu_wake_latency_us >= 0,
              f'cpu_wake_latency_us must be >= 0 microseconds (0: idle CPUs poll) or '
              f'null (the machine decides), got {self.cpu_wake_latency_us}')


@dataclass(frozen=True)
class GraphSpec:
    """A whole graph as written in its file: name, nodes, stop rule and leasing."""

    name: str
    """Name of the experiment; default run folders are runs/<name>-<time>."""
    nodes: tuple[NodeSpec, ...]
    """Nodes in start order; lifecycle nodes are activated after all others are up."""
    stop: StopSpec = field(default_factory=StopSpec)
    """When `realrl train` ends the run."""
    lease: LeaseSpec = field(default_factory=LeaseSpec)
    """Whether the run leases its robots from a hardware manager (off by default)."""
    sites: dict = field(default_factory=dict)
    """Site name -> {connect: the router's TLS endpoint} (a cloud-edge deployment:
    realrl_bringup.sites)."""
    host: HostSpec = field(default_factory=HostSpec)
    """How the machine running the graph is set while the run lasts."""
    mode: str = ''
    """'async' (the robots never wait for the learner) or 'sync' (they wait after each episode
    while it trains): set once here, it sets the learner's mode and every driver's
    sync_weights (realrl_bringup.graph_mode). '': the learner's own mode, else async."""

    def __post_init__(self):
        check(len(self.nodes) > 0, 'nodes must list at least one node')
        seen = set()
        for node in self.nodes:
            check(node.fqn not in seen, f'two nodes are both named {node.fqn}; rename one')
            seen.add(node.fqn)


def substitute(value: Any, variables: dict[str, str]) -> Any:
    """Replace ${name} in every string of a nested structure."""
    if isinstance(value, str):
        def repl(m):
            if m.group(1) not in variables:
                raise ConfigError(f'unknown variable ${{{m.group(1)}}} in {value!r}; '
                                  f'known: {sorted(variables)}')
            return variables[m.group(1)]
        return re.sub(r'\$\{(\w+)\}', repl, value)
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    return value


@dataclass(frozen=True)
class Graph:
    """A graph description read once, with its --set overrides applied once, and validated
    whole: every node's kind and config, and the references between nodes."""

    spec: GraphSpec
    """The nodes, stop criterion and lease, with ${variables} substituted."""
    kinds: dict[str, NodeKind]
    """Node fqn -> what its package registered for it (role, config class)."""
    configs: dict[str, Any]
    """Node fqn -> its parameters as its validated config object."""
    description: dict
    """The description as read, overrides applied, variables not substituted (what a run
    snapshots as graph.yaml, so --resume substitutes its own run folder)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def nodes(self) -> tuple[NodeSpec, ...]:
        return self.spec.nodes

    @property
    def stop(self) -> StopSpec:
        return self.spec.stop

    @property
    def host(self) -> HostSpec:
        return self.spec.host

    @property
    def lease(self) -> LeaseSpec:
        return self.spec.lease

    @property
    def mode(self) -> str:
        """'sync' or 'async', as resolved from the file (graph_mode.resolve_mode)."""
        return self.spec.mode

    def role(self, node: NodeSpec) -> str:
        return self.kinds[node.fqn].role

    def for_site(self, site: str) -> Graph:
        """This graph with only the nodes of ``site`` (validated whole before)."""
        nodes = nodes_of_site(self, site)
        return dataclasses.replace(self, spec=dataclasses.replace(self.spec, nodes=nodes))

    @property
    def drivers(self) -> list[NodeSpec]:
        """Nodes whose registered role is driver: each runs one robot."""
        return [n for n in self.nodes if self.role(n) == 'driver']

    def robot_ids(self) -> list[str]:
        """The robots of the graph, one per driver, in node order."""
        return [self.configs[n.fqn].robot_id for n in self.drivers]


def node_kinds(graph: GraphSpec) -> dict[str, NodeKind]:
    """What each node's package registered for its executable (ConfigError naming the node
    and the known executables when it registered nothing)."""
    kinds = {}
    for spec in graph.nodes:
        try:
            kinds[spec.fqn] = node_kind(spec.package, spec.executable)
        except ConfigError as e:
            raise ConfigError(f'node {spec.fqn}: {e}') from None
    return kinds


def validate_parameters(graph: GraphSpec, kinds: dict[str, NodeKind]) -> dict[str, Any]:
    """Check every node's parameters with its own config class, and cross references."""
    configs = {spec.fqn: build_config(kinds[spec.fqn].config, spec.parameters,
                                      where=f'node {spec.fqn} parameters')
               for spec in graph.nodes}
    drivers = [s for s in graph.nodes if kinds[s.fqn].role == 'driver']
    robot_kinds = {ep.name for ep in registered(ROBOTS)}
    for spec in drivers:
        robot = kinds[spec.fqn].robot
        check(robot in robot_kinds, f'node {spec.fqn}: {spec.package}/{spec.executable} runs '
                                    f'robot kind {robot!r}, which no package registers; known: '
                                    f'{sorted(robot_kinds)}')
        check(hasattr(configs[spec.fqn], 'robot_id'),
              f'node {spec.fqn}: a driver config has a robot_id; '
              f'{type(configs[spec.fqn]).__name__} has none')
    robots = [configs[s.fqn].robot_id for s in drivers]
    dupes = {r for r in robots if robots.count(r) > 1}
    check(not dupes,
          f'robot_id {sorted(dupes)} is used by more than one driver; give each its own')
    for spec in drivers:
        rid = configs[spec.fqn].robot_id
        check(spec.namespace == rid, f'node {spec.fqn}: a driver runs in the namespace of its '
                                     f'robot; set namespace: {rid}')
    for spec in graph.nodes:
        for rid in getattr(configs[spec.fqn], 'robot_ids', ()):
            check(rid in robots, f'node {spec.fqn} parameters: robot_ids names {rid!r}, but no '
                                 f'driver has that robot_id (drivers: {robots}); add a driver '
                                 f'or fix the id')
    self_scored = {configs[s.fqn].robot_id for s in drivers
                   if getattr(configs[s.fqn], 'reward_source', 'node') == 'env'}
    for spec in graph.nodes:
        if kinds[spec.fqn].role != 'reward':
            continue
        both = sorted(self_scored & set(getattr(configs[spec.fqn], 'robot_ids', ())))
        check(not both, f'node {spec.fqn} parameters: robot_ids names {both}, whose driver '
                        f'labels its own steps (reward_source: env); remove them from robot_ids '
                        f'or set reward_source: node on their driver')
    check_rewards_can_label(configs)
    check_priorities(configs)
    return configs


def apply_mode(spec: GraphSpec, kinds: dict[str, NodeKind], where: str) -> GraphSpec:
    """The graph with its mode resolved and handed to the nodes that act on it (graph_mode)."""
    nodes = [(n.fqn, kinds[n.fqn].role, kinds[n.fqn].config, n.parameters) for n in spec.nodes]
    try:
        mode = resolve_mode(spec.mode, nodes)
    except ConfigError as e:
        raise ConfigError(f'{where}: {e}') from None
    moded = tuple(dataclasses.replace(n, parameters=with_mode(mode, role, cls, n.parameters))
                  for n, (_, role, cls, _) in zip(spec.nodes, nodes))
    return dataclasses.replace(spec, nodes=moded, mode=mode)


def read_description(path: str | Path, overrides: list[str] = ()) -> dict:
    """The graph file as a mapping, with the --set overrides applied (once)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'config file {str(path)!r} does not exist; pass --config with a file '
                          f'such as config/reach_sim.yaml')
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f'{path}: not valid YAML: {e}') from None
    if not isinstance(raw, dict):
        raise ConfigError(f'{path}: expected a mapping with keys name, nodes, stop')
    for item in overrides:
        apply_override(raw, item)
    return raw


def build_graph(description: dict, variables: dict[str, str] | None = None,
                where: str = 'graph') -> Graph:
    """Substitute and validate a description (from ``read_description``); raises ConfigError
    before anything runs."""
    raw = substitute(copy.deepcopy(description), dict(variables or {}))
    if not isinstance(raw.get('nodes'), list):
        raise ConfigError(f'{where}: nodes must be a list of node entries')
    spec = build_config(GraphSpec, raw, where=where)
    kinds = node_kinds(spec)
    spec = apply_mode(spec, kinds, where)
    graph = Graph(spec, kinds, validate_parameters(spec, kinds), description)
    check_sites(graph)
    return graph


def load_graph(path: str | Path, variables: dict[str, str] | None = None,
               overrides: list[str] = ()) -> Graph:
    """Read, substitute and validate a graph file; raises ConfigError before anything runs."""
    return build_graph(read_description(path, overrides), variables, where=str(path))


def apply_override(raw: dict, item: str) -> None:
    """'policy.deterministic=true' sets nodes[name=policy].parameters.deterministic, in every
    node of that name (all drivers for 'driver.control_hz=10'); 'arm1/driver.seed=3' sets it
    in the node of that namespace and name only; 'stop.window=10' sets a top-level key.
    'mode=sync' sets the graph's top-level mode. Values are parsed as YAML."""
    if '=' not in item:
        raise ConfigError(f'--set {item!r}: expected KEY=VALUE, e.g. learner.sac.batch_size=128')
    key, text = item.split('=', 1)
    value = yaml.safe_load(text)
    head, *rest = key.split('.')
    if head in TOP_LEVEL_VALUES and not rest:
        raw[head] = value
        return
    if not rest:
        raise ConfigError(f'--set {item!r}: give a node name or section, e.g. stop.window=10 '
                          f'(or one of the top-level {list(TOP_LEVEL_VALUES)}, e.g. mode=sync)')
    if head in ('stop', 'lease', 'host'):
        targets = [raw.setdefault(head, {})]
    else:
        nodes = [n for n in raw.get('nodes', []) if isinstance(n, dict)]
        qualified = head.strip('/')
        matches = [n for n in nodes if n.get('name') == head or
                   f'{n.get("namespace") or ""}/{n.get("name")}'.strip('/') == qualified]
        if not matches:
            names = sorted({n.get('name') for n in nodes} |
                           {f'{n["namespace"]}/{n.get("name")}' for n in nodes
                            if n.get('namespace')})
            raise ConfigError(f'--set {item!r}: no node named {head!r}; nodes: {names}')
        targets = [n.setdefault('parameters', {}) for n in matches]
    for target in targets:
        for part in rest[:-1]:
            target = target.setdefault(part, {})
        target[rest[-1]] = value
