"""The full text definition of a ROS 2 message type, as rosbag2 embeds it in MCAP (no rclpy).

rosbag2 stores a channel's schema as the type's ``.msg`` text followed by the text of every
message type it uses, each after a line of 80 ``=`` and ``MSG: pkg/Type``. Readers that do
not have our packages (Foxglove, mcap-ros2-support) decode the data from that text alone.
The ``.msg`` files are found in the packages' share folders (``AMENT_PREFIX_PATH``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

SEPARATOR = '=' * 80
PRIMITIVES = frozenset((
    'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32',
    'uint32', 'int64', 'uint64', 'string', 'wstring'))
_FIELD = re.compile(r'^\s*([A-Za-z_][\w/]*)(?:<=\d+)?(?:\[[^\]]*\])?\s+\w+')


def msg_path(type_name: str, prefixes: list[str] | None = None) -> Path:
    """The .msg file of ``pkg/msg/Type`` (or ``pkg/Type``) in the installed packages."""
    pkg, name = _split(type_name)
    prefixes = prefixes if prefixes is not None else \
        [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    for prefix in prefixes:
        path = Path(prefix, 'share', pkg, 'msg', name + '.msg')
        if path.is_file():
            return path
    raise LookupError(f'no definition of {pkg}/msg/{name} under AMENT_PREFIX_PATH '
                      f'({len(prefixes)} prefixes); source scripts/env.sh first')


def _split(type_name: str) -> tuple[str, str]:
    parts = type_name.split('/')
    if len(parts) == 3 and parts[1] == 'msg':
        return parts[0], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ValueError(f'message type must be pkg/msg/Type, got {type_name!r}')


def used_types(text: str, package: str) -> list[str]:
    """The message types (``pkg/Type``) that the fields of a .msg text use, in order."""
    found = []
    for line in text.splitlines():
        line = line.split('#', 1)[0]
        m = _FIELD.match(line)
        if m is None or '=' in line:  # a comment, a blank line or a constant
            continue
        base = m.group(1)
        if base in PRIMITIVES:
            continue
        full = base if '/' in base else ('std_msgs/Header' if base == 'Header'
                                         else f'{package}/{base}')
        if full not in found:
            found.append(full)
    return found


def full_definition(type_name: str, prefixes: list[str] | None = None) -> str:
    """The type's text and, after it, every type it uses (depth first), rosbag2's way."""
    pkg, name = _split(type_name)
    root = msg_path(type_name, prefixes).read_text()
    parts, seen = [root.rstrip('\n')], {f'{pkg}/{name}'}
    todo = used_types(root, pkg)
    while todo:
        dep = todo.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        dep_pkg, _ = _split(dep)
        text = msg_path(dep, prefixes).read_text()
        parts.append(f'{SEPARATOR}\nMSG: {dep}\n{text.rstrip(chr(10))}')
        todo.extend(t for t in used_types(text, dep_pkg) if t not in seen)
    return '\n'.join(parts) + '\n'
