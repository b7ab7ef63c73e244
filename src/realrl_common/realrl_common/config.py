"""Validated configuration objects built from plain mappings (YAML, ROS parameters).

Every node reads its parameters once into a frozen dataclass. ``build_config`` is the one
place that turns untrusted input into such an object: it rejects unknown keys (suggesting
the nearest known one), checks types field by field, and lets the dataclass's own
``__post_init__`` check values. Errors are ``ConfigError`` and always name the key and
the fix, prefixed with where the value came from (file, node).
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Mapping


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


BAD_CONFIG_EXIT = 2
"""Exit status of a node that stopped on a ConfigError (``node_main.spin_node``): starting it
again cannot help, so it is not restarted and the run stops naming it."""


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        inner = _type_name(args[0]) if args else 'value'
        return f'list of {inner}'
    return getattr(tp, '__name__', str(tp))


def _coerce(value: Any, tp, key: str) -> Any:
    """Return value converted to the field type tp, or raise ConfigError naming key."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        origin = typing.get_origin(tp)
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not hasattr(value, '__iter__'):
            raise ConfigError(f'{key}: expected a {_type_name(tp)}, got {value!r}; '
                              f'write it as a YAML list, e.g. [..]')
        args = [a for a in typing.get_args(tp) if a is not Ellipsis] or [Any]
        items = [_coerce(v, args[0], f'{key}[{i}]') for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp in (bool, int, float, str):
        return _coerce_scalar(value, tp, key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f'{key}: expected a mapping of {tp.__name__} fields, got {value!r}')
        return _build(tp, value, path=f'{key}.')
    return value


def _coerce_scalar(value: Any, tp, key: str) -> Any:
    """Return value as tp (bool, int, float or str), or raise ConfigError naming key."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f'{key}: expected true or false, got {value!r}')
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f'{key}: expected an integer, got {value!r}')
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f'{key}: expected a number, got {value!r}')
    if isinstance(value, str):
        return value
    raise ConfigError(f'{key}: expected a string, got {value!r}; quote it in YAML')


def build_config(cls, values: Mapping[str, Any] | None, where: str = '', path: str = ''):
    """Build the frozen dataclass cls from values; unknown keys and wrong types raise.

    Messages read '<where>: <dotted.key>: <what is wrong and the fix>'; ``path`` prefixes
    the keys (e.g. 'algorithm.' for a section built apart from its parent).
    """
    try:
        return _build(cls, values, path=path)
    except ConfigError as e:
        raise ConfigError(f'{where}: {e}' if where else str(e)) from None


def _build(cls, values: Mapping[str, Any] | None, path: str):
    values = dict(values or {})
    prefix = path
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        key = unknown[0]
        near = difflib.get_close_matches(key, list(fields), n=1)
        hint = f'did you mean {prefix + near[0]!r}?' if near else f'known keys: {sorted(fields)}'
        raise ConfigError(f'unknown key {prefix + key!r}; {hint}')
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(value, hints[name], f'{prefix}{name}')
    missing = [n for n, f in fields.items() if n not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f'missing required key {prefix + missing[0]!r}; add it to the config')
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:  # ConfigError included: the class's own checks
        raise ConfigError(f'{prefix.rstrip(".")}: {e}' if prefix else str(e)) from None


def config_to_dict(cfg) -> dict:
    """Plain-dict form of a config dataclass (tuples as lists), for YAML/JSON."""
    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        return v
    return plain(cfg)


def check(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds; for use in __post_init__."""
    if not condition:
        raise ConfigError(message)
