"""Schema of a transition: named fixed-shape fields, plus the two fields the store reserves.

Reserved fields, added to every schema:

- ``robot_id``: the sender. Records carry it as a ``str`` (the robot's name, e.g. its ROS
  namespace); the store keeps a ``uint16`` code per row and the name of each code in its commit
  marker (``ReplayReader.robot_names``). Codes are assigned in order of first appearance and
  never change.
- ``seq``: ``int64``, the sender's sequence number, strictly increasing per sender. A record
  whose seq is not above the sender's highest accepted seq is a re-send and is dropped.

Everything else (observations, next observations, action, reward, flags, ids, stamps) is a
user field. Next observations are ordinary fields. With ``StoreConfig.dedup_next_obs`` an image
field ``next_obs/<x>`` that has an ``obs/<x>`` twin is *linked*: the store adds the internal
field ``_next_obs_link`` (uint8, bit i set: the row's i-th linked next image equals the
``obs/<x>`` of the same robot's next row in the same block and is stored as zeros). Readers
return the image itself; ``_next_obs_link`` is never returned unless asked for by name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Mapping

import numpy as np

from realrl_common.transition import ROBOT_ID, SEQ

from .config import CodecConfig, StoreConfig

LINK = '_next_obs_link'
MAX_LINKS = 8
ROBOT_CODE_DTYPE = np.dtype('<u2')
SEQ_DTYPE = np.dtype('<i8')
MAX_ROBOTS = int(np.iinfo(ROBOT_CODE_DTYPE).max) + 1

_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_\-]*(/[A-Za-z_][A-Za-z0-9_\-]*)*$')
_KINDS = 'biuf'


@dataclass(frozen=True)
class FieldSpec:
    """One field of a transition, as stored."""

    name: str
    """Field name; '/' nests it in a Zarr group (e.g. 'obs/image_front')."""
    shape: tuple[int, ...]
    """Shape of one row; () for scalars."""
    dtype: np.dtype
    """Little-endian numeric or bool dtype."""
    chunk_rows: int
    """Rows per Zarr chunk (a power of two)."""
    codec: CodecConfig
    """Codec of the chunks."""
    link: str | None = None
    """For a linked ``next_obs/<x>`` image: the ``obs/<x>`` field it is deduplicated against."""
    shard_chunks: int = 0
    """Chunks per shard file (format 3); 0: a file per chunk (format 2)."""

    @cached_property
    def row_bytes(self) -> int:
        """Bytes of one row (worked out once: appends ask for it per field and record)."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3 and self.dtype == np.uint8

    def to_json(self) -> dict:
        out = {'name': self.name, 'shape': list(self.shape), 'dtype': self.dtype.str,
               'chunk_rows': self.chunk_rows, 'codec': vars(self.codec).copy()}
        if self.link:
            out['link'] = self.link
        if self.shard_chunks:
            out['shard_chunks'] = self.shard_chunks
        return out

    @classmethod
    def from_json(cls, data: dict) -> FieldSpec:
        return cls(data['name'], tuple(int(n) for n in data['shape']), np.dtype(data['dtype']),
                   int(data['chunk_rows']), CodecConfig(**data['codec']), data.get('link'),
                   int(data.get('shard_chunks', 0)))


def _chunk_rows(row_bytes: int, cfg: StoreConfig) -> int:
    rows = max(1, cfg.target_chunk_bytes // max(1, row_bytes))
    rows = 1 << (rows.bit_length() - 1)
    return min(cfg.max_chunk_rows, max(cfg.min_chunk_rows, rows))


def _shard_chunks(spec: FieldSpec, cfg: StoreConfig) -> int:
    chunk_bytes = spec.chunk_rows * spec.row_bytes
    return min(cfg.max_shard_chunks, max(1, cfg.target_shard_bytes // chunk_bytes))


def _parse_spec(name: str, spec: Any) -> tuple[tuple[int, ...], np.dtype]:
    try:
        shape, dtype = spec
        shape = tuple(int(n) for n in shape)
        dtype = np.dtype(dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f'field {name!r}: spec must be (shape tuple, numpy dtype), got {spec!r} ({e})'
        ) from None
    if any(n < 1 for n in shape):
        raise ValueError(f'field {name!r}: every dimension must be >= 1, got shape {shape}')
    if dtype.kind not in _KINDS:
        raise ValueError(
            f'field {name!r}: dtype must be bool, integer or float, got {dtype}; '
            'encode strings as integer codes')
    return shape, dtype.newbyteorder('<') if dtype.itemsize > 1 else dtype


class Schema:
    """Ordered fields of a store, reserved fields last."""

    def __init__(self, fields: list[FieldSpec]):
        self.fields = tuple(fields)
        self.by_name = {f.name: f for f in self.fields}
        self.row_bytes = sum(f.row_bytes for f in self.fields)
        self.block_rows = min(f.chunk_rows for f in self.fields)
        """Smallest chunk; every field's chunk is a whole number of blocks."""
        self.links = tuple(f for f in self.fields if f.link)
        """Linked next_obs fields; bit i of LINK is ``links[i]``."""
        self.public = tuple(f for f in self.fields if f.name != LINK)
        """Fields returned by default (all but the internal LINK)."""

    @classmethod
    def build(cls, mapping: Mapping[str, Any], cfg: StoreConfig) -> Schema:
        """Validate a user mapping ``name -> (shape, dtype)`` and add the reserved fields.

        ``robot_id`` may be listed as ``str`` (or omitted); ``seq`` may be listed as
        ``((), int64)`` (or omitted).
        """
        if not isinstance(mapping, Mapping) or not mapping:
            raise ValueError(f'schema must be a non-empty mapping name -> (shape, dtype), got '
                             f'{type(mapping).__name__}')
        parsed: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        for name, spec in mapping.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(
                    f'field name {name!r} is invalid: use letters, digits, _ and -, '
                    "with '/' between levels (e.g. 'obs/image_front')")
            if name == ROBOT_ID:
                if spec not in (str, 'str'):
                    raise ValueError(
                        f"field 'robot_id' is reserved: records carry it as str and the store "
                        f'keeps uint16 codes; list it as str or leave it out (got {spec!r})')
                continue
            if name == LINK:
                raise ValueError(f'field {LINK!r} is reserved for the store (next_obs links)')
            if name == SEQ:
                shape, dtype = _parse_spec(name, spec)
                if shape != () or dtype != SEQ_DTYPE:
                    raise ValueError(
                        "field 'seq' is reserved as ((), int64), the sender's sequence number; "
                        f'list it that way or leave it out (got {spec!r})')
                continue
            parsed[name] = _parse_spec(name, spec)
        names = sorted(parsed)
        for a, b in zip(names, names[1:]):
            if b.startswith(a + '/'):
                raise ValueError(
                    f'field {a!r} is also a group of field {b!r}; rename one of them')
        fields = []
        n_links = 0
        for name, (shape, dtype) in parsed.items():
            row_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            large = row_bytes >= cfg.large_row_bytes
            image = len(shape) == 3 and dtype == np.uint8
            codec = ((cfg.image_codec if image else cfg.large_codec) if large
                     else cfg.small_codec)
            if codec.filter != 'none' and not image:
                codec = cfg.large_codec
            twin = 'obs/' + name[len('next_obs/'):] if name.startswith('next_obs/') else None
            link = None
            if (cfg.dedup_next_obs and large and twin in parsed
                    and parsed[twin] == (shape, dtype) and n_links < MAX_LINKS):
                link, n_links = twin, n_links + 1
            fields.append(FieldSpec(name, shape, dtype, _chunk_rows(row_bytes, cfg), codec,
                                    link))
        if n_links:
            fields.append(FieldSpec(LINK, (), np.dtype(np.uint8), cfg.max_chunk_rows,
                                    cfg.small_codec))
        fields.append(FieldSpec(ROBOT_ID, (), ROBOT_CODE_DTYPE, cfg.max_chunk_rows,
                                cfg.small_codec))
        fields.append(FieldSpec(SEQ, (), SEQ_DTYPE, cfg.max_chunk_rows, cfg.small_codec))
        return cls([replace(f, shard_chunks=_shard_chunks(f, cfg)) for f in fields])

    def to_json(self) -> list[dict]:
        return [f.to_json() for f in self.fields]

    @classmethod
    def from_json(cls, data: list[dict]) -> Schema:
        return cls([FieldSpec.from_json(d) for d in data])

    def user_fields(self) -> list[FieldSpec]:
        return [f for f in self.fields if f.name not in (ROBOT_ID, SEQ, LINK)]

    def empty(self, n: int) -> dict[str, np.ndarray]:
        """Zeroed columns for n rows."""
        return {f.name: np.zeros((n, *f.shape), f.dtype) for f in self.fields}
