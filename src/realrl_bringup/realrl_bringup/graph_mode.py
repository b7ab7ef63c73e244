"""The graph's one switch between synchronous and asynchronous training (no ROS).

A graph file says ``mode: sync`` or ``mode: async`` once, at its top level (``--set
mode=sync`` on the command line). Two kinds of node act on it, and both get it from here:

- every learner's ``mode`` (in sync mode it trains only while the robots wait);
- every driver's ``sync_weights`` (in sync mode the robot waits after each episode for
  weights trained on it).

A node takes part by having that field in its config class, so a new driver or learner kind
needs no edit here. Files written before the switch existed keep working: a learner's own
``mode`` parameter, when the graph has no ``mode``, is the graph's. A driver's own
``sync_weights`` is no switch: it may only repeat what the mode says, and otherwise the
error names the graph's ``mode`` key.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from realrl_common.config import ConfigError

MODES = ('async', 'sync')
"""The graph's modes; 'async' when nothing says otherwise."""
ROLE_FIELDS = {'learner': 'mode', 'driver': 'sync_weights'}
"""Role -> the field of its config the mode sets."""


def _has_field(config_cls: type, name: str) -> bool:
    return dataclasses.is_dataclass(config_cls) and any(
        f.name == name for f in dataclasses.fields(config_cls))


def _field_value(mode: str, name: str) -> Any:
    return mode == 'sync' if name == 'sync_weights' else mode


def resolve_mode(graph_mode: str, nodes: list[tuple[str, str, type, dict]]) -> str:
    """The graph's mode from its top-level ``mode`` ('' when absent) and its nodes, given as
    (fqn, role, config class, parameters). ConfigError when they disagree, naming the key."""
    if graph_mode and graph_mode not in MODES:
        raise ConfigError(f'mode must be one of {list(MODES)} (async: the robots never wait '
                          f'for the learner; sync: they wait after each episode while it '
                          f'trains), got {graph_mode!r}')
    learner_modes = {fqn: params['mode'] for fqn, role, cls, params in nodes
                     if role == 'learner' and _has_field(cls, 'mode') and 'mode' in params}
    if not graph_mode and len(set(learner_modes.values())) > 1:
        raise ConfigError(f'learners disagree on mode ({learner_modes}); set the graph\'s '
                          f'top-level mode: sync or mode: async and remove theirs')
    mode = graph_mode or next(iter(learner_modes.values()), 'async')
    for fqn, learner_mode in learner_modes.items():
        if learner_mode != mode:
            raise ConfigError(f'node {fqn} parameters: mode is {learner_mode!r}, but the '
                              f'graph\'s mode is {mode!r}; remove the learner\'s mode (the '
                              f'graph\'s top-level mode: sets it for the learner and every '
                              f'driver)')
    for fqn, role, cls, params in nodes:
        if role == 'driver' and 'sync_weights' in params and \
                params['sync_weights'] != (mode == 'sync'):
            raise ConfigError(f'node {fqn} parameters: sync_weights is {params["sync_weights"]}'
                              f', but the graph\'s mode is {mode!r}; remove sync_weights and '
                              f'set the graph\'s top-level mode: sync (or --set mode=sync): it '
                              f'sets every driver and the learner at once')
    if mode == 'sync' and not any(role == 'learner' for _, role, _, _ in nodes):
        raise ConfigError("mode is 'sync', but the graph has no learner: its drivers would "
                          "wait for new weights forever; set mode: async")
    return mode


def with_mode(mode: str, role: str, config_cls: type, params: dict) -> dict:
    """The parameters with the field the mode sets for a node of this role (others: as given)."""
    name = ROLE_FIELDS.get(role)
    if name is None or not _has_field(config_cls, name):
        return params
    return {**params, name: _field_value(mode, name)}
