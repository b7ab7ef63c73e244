"""Read a ROS 2 message from its serialized bytes (CDR, little endian) without rclpy.

rclpy turns every received message into Python objects, copying each ``uint8[]`` into a new
``array``: for a transition with camera frames that was the replay node's largest cost per
message. ``CdrReader(Transition)`` reads a subscription's raw bytes (``raw=True``) into
``types.SimpleNamespace`` objects with the message's field names, so code written for the
message (``TransitionSchema.from_message``) reads them unchanged; numeric sequences are
numpy views of the bytes (read-only, no copy). The layout comes from the message class's
``get_fields_and_field_types()``: primitives, strings, nested messages and unbounded
sequences of either (what Transition, Image, Header and Time use); other types raise
NotImplementedError when the reader is built. Malformed bytes raise ValueError.
"""
from __future__ import annotations

import importlib
import struct
from types import SimpleNamespace

import numpy as np

PRIMITIVES = {'boolean': '?', 'octet': 'B', 'uint8': 'B', 'int8': 'b', 'char': 'B',
              'uint16': 'H', 'int16': 'h', 'uint32': 'I', 'int32': 'i', 'uint64': 'Q',
              'int64': 'q', 'float': 'f', 'double': 'd'}
"""ROS field type -> struct format (its size is its CDR alignment)."""
_U32 = struct.Struct('<I')
ORIGIN = 4
"""Bytes of the encapsulation header; alignment counts from after it."""


def _message_class(name: str):
    package, _, cls = name.partition('/')
    return getattr(importlib.import_module(f'{package}.msg'), cls)


class CdrReader:
    """Reads one message type from serialized bytes; build once per type, call per message."""

    def __init__(self, msg_class):
        self.name = msg_class.__name__
        self._plan = [(field, _reader(kind))
                      for field, kind in msg_class.get_fields_and_field_types().items()]

    def __call__(self, raw: bytes) -> SimpleNamespace:
        buf = memoryview(raw)
        if len(buf) < ORIGIN or bytes(buf[:2]) != b'\x00\x01':
            raise ValueError(f'{self.name}: not little-endian CDR (encapsulation '
                             f'{bytes(buf[:2]).hex()})')
        try:
            value, _ = self.read(buf, ORIGIN)
        except (struct.error, IndexError) as e:
            raise ValueError(f'{self.name}: truncated or malformed message ({e})') from None
        return value

    def read(self, buf, pos: int) -> tuple[SimpleNamespace, int]:
        out = SimpleNamespace()
        for field, read in self._plan:
            value, pos = read(buf, pos)
            setattr(out, field, value)
        return out, pos


def _align(pos: int, size: int) -> int:
    return pos + (-(pos - ORIGIN) % size)


def _reader(kind: str):
    """A function (buffer, position) -> (value, next position) for one field type."""
    if kind in PRIMITIVES:
        fmt = struct.Struct('<' + PRIMITIVES[kind])
        size = fmt.size

        def primitive(buf, pos):
            pos = _align(pos, size)
            return fmt.unpack_from(buf, pos)[0], pos + size
        return primitive
    if kind == 'string':
        return _string
    if kind.startswith('sequence<') and kind.endswith('>'):
        inner = kind[len('sequence<'):-1]
        if inner in PRIMITIVES:
            return _array_reader(np.dtype('<' + PRIMITIVES[inner]))
        element = _reader(inner)

        def sequence(buf, pos):
            pos = _align(pos, 4)
            (n,) = _U32.unpack_from(buf, pos)
            pos += 4
            items = []
            for _ in range(n):
                item, pos = element(buf, pos)
                items.append(item)
            return items, pos
        return sequence
    if '/' in kind and '<' not in kind and '[' not in kind:
        nested = CdrReader(_message_class(kind))
        return nested.read
    raise NotImplementedError(f'CDR type {kind!r} is not read here (bounded strings, arrays '
                              'and bounded sequences are not used by realrl messages)')


def _string(buf, pos):
    pos = _align(pos, 4)
    (n,) = _U32.unpack_from(buf, pos)
    pos += 4
    if n == 0 or pos + n > len(buf):
        raise ValueError(f'string of {n} bytes at {pos} does not fit')
    return bytes(buf[pos:pos + n - 1]).decode(), pos + n


def _array_reader(dtype: np.dtype):
    size = dtype.itemsize

    def array(buf, pos):
        pos = _align(pos, 4)
        (n,) = _U32.unpack_from(buf, pos)
        pos = _align(pos + 4, size) if n else pos + 4
        end = pos + n * size
        if end > len(buf):
            raise ValueError(f'sequence of {n} values at {pos} does not fit')
        return np.frombuffer(buf, dtype, n, pos), end
    return array
