"""What each package provides, found through Python entry points; no ROS imports.

A package declares its parts in its own ``setup.py``, and nothing central lists them:

    entry_points={
        'realrl.nodes': ['my_arm_driver = my_pkg.config:NODE'],     # a NodeKind
        'realrl.robots': ['my_arm = my_pkg.config:ROBOT'],          # a RobotKind
        'realrl.policies': ['my_net = my_pkg.actor:MyActor'],       # an actor class
    }

- ``realrl.nodes``: each executable of a package that can run in a graph, named
  ``<executable>``; its value is a ``NodeKind`` (role and config class). The entry point's
  distribution is the package, so two packages may both have a ``driver``.
- ``realrl.robots``: robot kinds, a ``RobotKind`` each (driver config, robot factory).
- ``realrl.policies``: actor network types, chosen by ``type`` in the actor's config and
  carried in the weights blob's header (``realrl_policy.policy_types``).
- ``realrl.rewards``: reward functions, a ``RewardKind`` each
  (``realrl_reward.reward_kinds``), chosen by the reward node's ``type``.
- ``realrl.algorithms``: the same form, for learners' algorithms (not looked up by name yet).

Modules an entry point names must import no rclpy: ``realrl check`` loads them to
validate a graph without ROS.
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable

from realrl_common.config import ConfigError, check

NODES = 'realrl.nodes'
ROBOTS = 'realrl.robots'
POLICIES = 'realrl.policies'
ALGORITHMS = 'realrl.algorithms'
REWARDS = 'realrl.rewards'

ROLES = ('driver', 'policy', 'reward', 'replay', 'learner', 'teleop', 'camera', 'hardware',
         'peer', 'bridge', 'router', 'recorder')
"""What a node is to a graph. 'driver': runs one robot (its ``robot_id`` is the graph's
robot and its namespace); 'reward': labels robots' observations; 'peer': stands in for
something outside realrl (a simulated controller) so a set-up can be tried without it;
'bridge': carries robots' topics between a site and the cloud; 'router': the cloud's Zenoh
router the sites' bridges connect to; 'recorder': writes the graph's topics to MCAP."""


@dataclass(frozen=True)
class NodeKind:
    """An executable that can run in a graph: what it is and how its parameters validate."""

    role: str
    """One of ROLES."""
    config: type
    """Frozen dataclass its ROS parameters build (``realrl_common.config.build_config``)."""
    robot: str = ''
    """For a driver: the robot kind it runs (a ``realrl.robots`` name)."""
    launch: Any = None
    """How the launcher starts the node's process, if not by its command as is: a function
    (validated config, command) -> command (the learner's ranks: torchrun)."""

    def __post_init__(self):
        check(self.role in ROLES, f'role must be one of {list(ROLES)}, got {self.role!r}')
        check(isinstance(self.config, type), f'config must be a dataclass type, got '
                                             f'{self.config!r}')
        check(self.role != 'driver' or bool(self.robot),
              'a driver node names the robot kind it runs (robot=...)')


@dataclass(frozen=True)
class RobotKind:
    """A kind of robot a driver can run."""

    config: type
    """The driver config class of this kind (``DriverNodeConfig`` plus the robot's section)."""
    make_robot: str
    """'module:function' building the robot from that config; imported only when a driver
    starts, so that listing kinds does not load simulators or SDKs."""

    def factory(self) -> Callable:
        """The make_robot function."""
        return load_object(self.make_robot)


def load_object(target: str) -> Any:
    """'package.module:attr' -> the object."""
    module, _, attr = target.partition(':')
    obj = importlib.import_module(module)
    for part in attr.split('.') if attr else ():
        obj = getattr(obj, part)
    return obj


@functools.lru_cache(maxsize=None)
def registered(group: str) -> tuple[EntryPoint, ...]:
    """Every entry point of group, from every installed distribution. Read once per process
    (a scan of sys.path takes tens of milliseconds; a policy looks its actor type up for every
    weights version): a package installed later is seen by processes started later."""
    return tuple(sorted(entry_points(group=group), key=lambda ep: ep.name))


def package_of(ep: EntryPoint) -> str:
    """The (ROS) package that declared ep: its distribution's name, with '_' for '-'."""
    dist = getattr(ep, 'dist', None)
    name = dist.metadata['Name'] if dist is not None else ep.module.split('.')[0]
    return name.replace('-', '_')


def node_kinds() -> dict[tuple[str, str], EntryPoint]:
    """(package, executable) -> entry point of every registered node."""
    return {(package_of(ep), ep.name): ep for ep in registered(NODES)}


def node_kind(package: str, executable: str) -> NodeKind:
    """The registered NodeKind of package/executable; ConfigError naming the known ones."""
    ep = node_kinds().get((package, executable))
    if ep is None:
        known = sorted(f'{p}/{e}' for p, e in node_kinds())
        raise ConfigError(f'unknown executable {package}/{executable}; known: {known} '
                          f"(a package registers its nodes under the '{NODES}' entry points "
                          f'of its setup.py; rebuild and source its install folder)')
    kind = ep.load()
    if not isinstance(kind, NodeKind):
        raise ConfigError(f"{package}/{executable}: its '{NODES}' entry point {ep.value} is "
                          f'a {type(kind).__name__}, not a NodeKind')
    return kind


def lookup(group: str, name: str, what: str) -> Any:
    """The object registered as name in group; ConfigError naming the known names."""
    eps = {ep.name: ep for ep in registered(group)}
    if name not in eps:
        raise ConfigError(f'unknown {what} {name!r}; known: {sorted(eps)} (a package adds '
                          f"one under the '{group}' entry points of its setup.py)")
    return eps[name].load()


def robot_kind(name: str) -> RobotKind:
    """The registered RobotKind called name."""
    kind = lookup(ROBOTS, name, 'robot kind')
    if not isinstance(kind, RobotKind):
        raise ConfigError(f"robot kind {name!r}: its '{ROBOTS}' entry point is a "
                          f'{type(kind).__name__}, not a RobotKind')
    return kind
