"""Checks between the nodes of a graph that one node's config cannot make alone (no ROS).

A reward node labels every step of the robots it lists from named slices of their state. A
robot whose state lacks one of them could never be labelled: its driver would wait for
labels forever while the run looked alive. So the slices a reward reads are compared, before
anything starts, with those each robot's driver declares from its config alone.

Both sides are optional methods of config objects, so any node kind can take part:

- a reward node's config: ``needed_state_slices() -> {parameter: slice name}``, and
  ``robot_ids``;
- a driver's config: ``state_names() -> tuple of slice names``, or None where only the
  built robot knows them (those robots are not checked here), and ``robot_id``.
"""
from __future__ import annotations

from typing import Any

from realrl_common.config import ConfigError


def check_rewards_can_label(configs: dict[str, Any]) -> None:
    """ConfigError naming the reward node, the robot, the missing slices and the fix, if a
    reward node lists a robot whose state lacks a slice it reads. ``configs``: node fully
    qualified name -> its validated config."""
    states = {}  # robot_id -> (driver fqn, slice names)
    for fqn, cfg in configs.items():
        names = cfg.state_names() if callable(getattr(cfg, 'state_names', None)) else None
        if names is not None and hasattr(cfg, 'robot_id'):
            states[cfg.robot_id] = (fqn, tuple(names))
    for fqn, cfg in configs.items():
        needed = getattr(cfg, 'needed_state_slices', None)
        if not callable(needed):
            continue
        for rid in getattr(cfg, 'robot_ids', ()):
            if rid not in states:
                continue
            driver, names = states[rid]
            missing = {p: s for p, s in needed().items() if s not in names}
            if missing:
                wanted = ', '.join(f'{p} {s!r}' for p, s in missing.items())
                raise ConfigError(
                    f'node {fqn} parameters: robot {rid!r} cannot be labelled: the reward reads '
                    f'{wanted}, but the state of {driver} has only {list(names)}, so its driver '
                    f'would wait for reward labels forever. Set {" / ".join(missing)} to slices '
                    f'it has, or remove {rid!r} from robot_ids and score it another way')



def check_priorities(configs: dict[str, Any]) -> None:
    """ConfigError naming the node, its priority, the drivers' and the fix, if a node that
    is not a driver (a config with ``realtime_priority`` and no ``robot_id``: the policy,
    reward, replay node, hardware manager) runs SCHED_FIFO at or above the control thread
    of a robot it serves (its ``robot_ids``; every robot when it has none). Such a thread
    would run before the driver's clock whenever both are ready, and a robot's ticks would
    wait for other work. ``configs``: node fully qualified name -> its validated config."""
    drivers = {cfg.robot_id: (fqn, int(getattr(cfg, 'realtime_priority', 0) or 0))
               for fqn, cfg in configs.items() if hasattr(cfg, 'robot_id')}
    for fqn, cfg in configs.items():
        rt = int(getattr(cfg, 'realtime_priority', 0) or 0)
        if rt == 0 or hasattr(cfg, 'robot_id'):
            continue
        ids = getattr(cfg, 'robot_ids', None) or list(drivers)
        served = [drivers[r] for r in ids if r in drivers]
        clashing = sorted(f'{d} ({p or "normal scheduling"})' for d, p in served if p <= rt)
        if clashing:
            lowest = min(p for _, p in served)
            fix = (f'set realtime_priority below {lowest}, e.g. {lowest // 2}' if lowest > 1
                   else 'set realtime_priority: 0 here')
            raise ConfigError(
                f'node {fqn} parameters: realtime_priority {rt} is not below the control '
                f'thread of {", ".join(clashing)}; its answers would run before those clocks. '
                f'Give the drivers a higher realtime_priority, or {fix}')
