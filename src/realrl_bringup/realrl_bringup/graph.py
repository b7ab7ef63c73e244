"""The graph description: which nodes run, with which parameters, and when a run stops.

One YAML file (``config/*.yaml``) is read by both ``realrl`` and the ``launch/*.launch.py``
files, so the two ways of starting a graph cannot drift apart. Everything is checked here,
before any process starts: unknown keys, wrong types, parameters each node's own config
class rejects, and robot ids that no driver has.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from realrl_bringup.graph_checks import check_rewards_can_label
from realrl_bringup.lease_keeper import LeaseSpec
from realrl_common.config import ConfigError, build_config, check

RESTART_POLICIES = ('never', 'on_failure')

# (package, executable) -> 'module:ConfigClass' that validates the node's parameters.
NODE_CONFIGS = {
    ('realrl_driver', 'mujoco_arm_driver'): 'realrl_driver.mujoco_arm_driver:MujocoArmDriverConfig',
    ('realrl_driver', 'gym_driver'): 'realrl_driver.gym_driver:GymDriverConfig',
    ('realrl_driver', 'ur_rtde_driver'): 'realrl_driver.ur_rtde_driver:URDriverConfig',
    ('realrl_driver', 'ros2_control_driver'):
        'realrl_driver.ros2_control_driver:Ros2ControlDriverConfig',
    ('realrl_driver', 'camera_node'): 'realrl_driver.camera_node:CameraNodeConfig',
    ('realrl_teleop', 'teleop_node'): 'realrl_teleop.teleop_core:TeleopConfig',
    ('realrl_policy', 'policy_node'): 'realrl_policy.policy_node:PolicyNodeConfig',
    ('realrl_reward', 'reward_node'): 'realrl_reward.reward_node:RewardNodeConfig',
    ('realrl_replay', 'replay_node'): 'realrl_replay.replay_node:ReplayNodeConfig',
    ('realrl_learner', 'learner_node'): 'realrl_learner.learner_node:LearnerNodeConfig',
    ('realrl_hardware', 'hardware_manager'):
        'realrl_hardware.hardware_manager_node:HardwareManagerConfig',
}
DRIVER_PACKAGE = 'realrl_driver'
REWARD_PACKAGE = 'realrl_reward'
NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')


@dataclass(frozen=True)
class NodeSpec:
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
    parameters: dict = field(default_factory=dict)
    """The node's ROS parameters (nested mappings become dotted names)."""

    def __post_init__(self):
        check(bool(NAME.match(self.name)), f'name must be a ROS name like policy, got {self.name!r}')
        check(self.namespace == '' or bool(NAME.match(self.namespace)),
              f'namespace must be a ROS name like arm0 (no slashes), got {self.namespace!r}')
        check(self.restart in RESTART_POLICIES,
              f'restart must be one of {list(RESTART_POLICIES)}, got {self.restart!r}')

    @property
    def fqn(self) -> str:
        return f'/{self.namespace}/{self.name}' if self.namespace else f'/{self.name}'

    @property
    def label(self) -> str:
        return self.fqn.lstrip('/').replace('/', '.')


@dataclass(frozen=True)
class StopSpec:
    success_rate: float = 0.9
    """The run succeeds when this share of the last `window` episodes succeeded."""
    window: int = 20
    """Episodes the success rate is taken over."""
    max_wall_s: float = 900.0
    """The run stops, unsuccessful, after this many seconds."""

    def __post_init__(self):
        check(0 < self.success_rate <= 1, f'stop.success_rate must be in (0, 1], got {self.success_rate}')
        check(self.window > 0, f'stop.window must be > 0, got {self.window}')
        check(self.max_wall_s > 0, f'stop.max_wall_s must be > 0, got {self.max_wall_s}')


@dataclass(frozen=True)
class GraphSpec:
    name: str
    """Name of the experiment; default run folders are runs/<name>-<time>."""
    nodes: tuple[NodeSpec, ...]
    """Nodes in start order; lifecycle nodes are activated after all others are up."""
    stop: StopSpec = field(default_factory=StopSpec)
    """When `realrl train` ends the run."""
    lease: LeaseSpec = field(default_factory=LeaseSpec)
    """Whether the run leases its robots from a hardware manager (off by default)."""

    def __post_init__(self):
        check(len(self.nodes) > 0, 'nodes must list at least one node')
        seen = set()
        for node in self.nodes:
            check(node.fqn not in seen, f'two nodes are both named {node.fqn}; rename one')
            seen.add(node.fqn)

    @property
    def drivers(self) -> list[NodeSpec]:
        """Robot drivers: realrl_driver's executables named *_driver (not its camera_node or
        ros2_control_peer)."""
        return [n for n in self.nodes
                if n.package == DRIVER_PACKAGE and n.executable.endswith('_driver')]

    def robot_ids(self) -> list[str]:
        return [str(n.parameters.get('robot_id', 'arm0')) for n in self.drivers]


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


def config_class(spec: NodeSpec):
    target = NODE_CONFIGS.get((spec.package, spec.executable))
    if target is None:
        known = [f'{p}/{e}' for p, e in NODE_CONFIGS]
        raise ConfigError(f'node {spec.name!r}: unknown executable {spec.package}/{spec.executable}; '
                          f'known: {known}')
    module, cls = target.split(':')
    return getattr(importlib.import_module(module), cls)


def validate_parameters(graph: GraphSpec) -> dict[str, Any]:
    """Check every node's parameters with its own config class, and cross references."""
    configs = {}
    for spec in graph.nodes:
        configs[spec.fqn] = build_config(config_class(spec), spec.parameters,
                                         where=f'node {spec.fqn} parameters')
    robots = graph.robot_ids()
    dupes = {r for r in robots if robots.count(r) > 1}
    check(not dupes, f'robot_id {sorted(dupes)} is used by more than one driver; give each its own')
    for spec in graph.drivers:
        rid = configs[spec.fqn].robot_id
        check(spec.namespace == rid, f'node {spec.fqn}: a driver runs in the namespace of its '
                                     f'robot; set namespace: {rid}')
    for spec in graph.nodes:
        for rid in getattr(configs[spec.fqn], 'robot_ids', ()):
            check(rid in robots, f'node {spec.fqn} parameters: robot_ids names {rid!r}, but no '
                                 f'driver has that robot_id (drivers: {robots}); add a driver '
                                 f'or fix the id')
    self_scored = {configs[s.fqn].robot_id for s in graph.drivers
                   if getattr(configs[s.fqn], 'reward_source', 'node') == 'env'}
    for spec in graph.nodes:
        if spec.package != REWARD_PACKAGE:
            continue
        both = sorted(self_scored & set(getattr(configs[spec.fqn], 'robot_ids', ())))
        check(not both, f'node {spec.fqn} parameters: robot_ids names {both}, whose driver '
                        f'labels its own steps (reward_source: env); remove them from robot_ids '
                        f'or set reward_source: node on their driver')
    check_rewards_can_label(configs)
    return configs


def load_graph(path: str | Path, variables: dict[str, str] | None = None,
               overrides: list[str] = ()) -> GraphSpec:
    """Read, substitute and validate a graph file; raises ConfigError before anything runs."""
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
    raw = substitute(raw, dict(variables or {}))
    if not isinstance(raw.get('nodes'), list):
        raise ConfigError(f'{path}: nodes must be a list of node entries')
    graph = build_config(GraphSpec, raw, where=str(path))
    validate_parameters(graph)
    return graph


def apply_override(raw: dict, item: str) -> None:
    """'policy.deterministic=true' sets nodes[name=policy].parameters.deterministic;
    'stop.window=10' sets a top-level key. Values are parsed as YAML."""
    if '=' not in item:
        raise ConfigError(f'--set {item!r}: expected KEY=VALUE, e.g. learner.sac.batch_size=128')
    key, text = item.split('=', 1)
    value = yaml.safe_load(text)
    head, *rest = key.split('.')
    if not rest:
        raise ConfigError(f'--set {item!r}: give a node name or section, e.g. stop.window=10')
    if head in ('stop', 'lease'):
        target = raw.setdefault(head, {})
    else:
        matches = [n for n in raw.get('nodes', []) if isinstance(n, dict) and n.get('name') == head]
        if not matches:
            names = [n.get('name') for n in raw.get('nodes', []) if isinstance(n, dict)]
            raise ConfigError(f'--set {item!r}: no node named {head!r}; nodes: {names}')
        target = matches[0].setdefault('parameters', {})
    for part in rest[:-1]:
        target = target.setdefault(part, {})
    target[rest[-1]] = value
