"""Read a node's ROS parameters into a validated config dataclass.

Nodes are created with ``automatically_declare_parameters_from_overrides=True``, so every
parameter a params file or ``-p`` gives is declared; ``read_config`` collects them (dotted
names become nested mappings) and hands them to ``build_config``, which rejects unknown
keys and wrong types with a message that names the key.
"""
from __future__ import annotations

from typing import Any

from realrl_common.config import build_config

IGNORED = {'use_sim_time', 'start_type_description_service'}


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """{'a.b': 1, 'c': 2} -> {'a': {'b': 1}, 'c': 2}."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split('.')
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def parameter_values(node) -> dict[str, Any]:
    """The node's parameters as nested mappings (ROS's own ones left out)."""
    flat = {}
    for name, param in node.get_parameters_by_prefix('').items():
        if name in IGNORED or name.startswith('qos_overrides'):
            continue
        value = param.value
        if isinstance(value, (list, tuple)) or type(value).__name__ == 'array':
            value = list(value)
        flat[name] = value
    return unflatten(flat)


def read_config(node, cls):
    """The node's parameters as a cls instance; raises ConfigError naming the key."""
    return build_config(cls, parameter_values(node), where=node.get_fully_qualified_name())
