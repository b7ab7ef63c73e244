"""Creating a store folder, and validating one (read-only) before anybody uses it."""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from . import pixel_delta
from .config import StoreConfig
from .errors import StoreError
from .layout import DATA_DIR, CommitMarker, Identity, MarkerSlots, field_dir, fsync_dir, write_file
from .plain_view import group_attributes
from .schema import Schema


@dataclass(frozen=True)
class StoreInfo:
    """What a validated store declares about itself."""

    root: Path
    identity: Identity
    schema: Schema
    config: StoreConfig

    @property
    def metadata(self) -> dict:
        """The store's per-run metadata, written once at creation and never changed: for a
        store of the replay node ``{'robots': {name: description}, 'created_unix': ...}``,
        for an imported one also ``source``/``origin`` (see import_demos.py)."""
        return self.identity.metadata

    @property
    def version(self) -> int:
        return self.identity.version

    def read_marker(self) -> CommitMarker:
        return CommitMarker.read(self.root, self.identity.uuid, self.schema, self.version)

    @classmethod
    def load(cls, root: str | os.PathLike) -> StoreInfo:
        """Validate ``root`` as a store without writing to it; StoreError says what is wrong."""
        root = Path(root)
        identity = Identity.read(root)
        try:
            schema = Schema.from_json(identity.schema)
            config = StoreConfig.from_json(identity.config)
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f'{root}: identity file has an invalid schema or config ({e}); '
                             'the store is corrupted') from None
        for spec in schema.fields:
            meta_path = field_dir(root, spec) / 'zarr.json'
            try:
                meta = json.loads(meta_path.read_bytes())
                file_rows = spec.chunk_rows * max(1, spec.shard_chunks)
                ok = (meta['chunk_grid']['configuration']['chunk_shape'][0] == file_rows
                      and list(meta['shape'][1:]) == list(spec.shape))
            except FileNotFoundError:
                raise StoreError(f'{root}: array of field {spec.name!r} is missing '
                                 f'({meta_path}); the store is corrupted') from None
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                ok = False
            if not ok:
                raise StoreError(f'{meta_path}: Zarr metadata of field {spec.name!r} does not '
                                 'match the schema; the store is corrupted')
        return cls(root, identity, schema, config)


def create_store(root: str | os.PathLike, mapping: Mapping[str, Any], metadata: Mapping,
                 config: StoreConfig, fsync: bool = True) -> StoreInfo:
    """Lay out a new empty store at ``root`` (absent or an empty folder).

    The identity file is written last: an interrupted creation leaves a folder that every open
    rejects as 'not a store'.
    """
    root = Path(root)
    schema = Schema.build(mapping, config)
    try:
        metadata = json.loads(json.dumps(dict(metadata)))
    except (TypeError, ValueError) as e:
        raise ValueError(f'metadata must be a JSON-serializable dict: {e}') from None
    if root.exists():
        if not root.is_dir():
            raise StoreError(f'{root}: exists and is not a folder; refusing to create a store')
        if any(root.iterdir()):
            raise StoreError(f'{root}: folder is not empty; refusing to create a store there '
                             '(use ReplayWriter.open for an existing store)')
    root.mkdir(parents=True, exist_ok=True)
    _create_arrays(root / DATA_DIR, schema, fsync)
    identity = Identity(uuid.uuid4().hex, schema.to_json(), config.to_json(), metadata,
                        time.time_ns())
    MarkerSlots.create(root, CommitMarker(identity.uuid, 0, 0, (), (), schema.empty(0)), schema,
                       fsync)
    if fsync:  # everything durable before the identity file that makes the folder a store
        _fsync_tree(root / DATA_DIR)
        fsync_dir(root)
    identity.write(root, fsync)
    if fsync:
        fsync_dir(root)
        fsync_dir(root.parent)
    return StoreInfo(root, identity, schema, config)


def _fsync_tree(top: Path) -> None:
    """Fsync every file and folder under ``top`` (Zarr's metadata files and the folders that
    name them), folders after their contents, ``top`` last."""
    for folder, _, files in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def _create_arrays(data_root: Path, schema: Schema, fsync: bool) -> None:
    import warnings

    import zarr
    from zarr.codecs import BloscCodec, BytesCodec, Delta, TransposeCodec

    group = zarr.open_group(str(data_root), mode='w-')
    group.attrs.update(group_attributes(schema, 0, 0, ()))  # plain_view.py keeps them true
    for spec in schema.fields:
        codec = spec.codec
        filters = None
        if codec.filter == 'pixel_delta':
            filters = [pixel_delta.register_zarr_codec()()]
        elif codec.filter == 'delta':
            with warnings.catch_warnings():  # numcodecs.delta is not in the Zarr v3 core spec
                warnings.simplefilter('ignore')
                filters = [TransposeCodec(order=(0, 3, 1, 2)), Delta(dtype='|u1')]
        compressors = [BloscCodec(cname=codec.cname, clevel=codec.clevel, shuffle=codec.shuffle,
                                  typesize=spec.dtype.itemsize)]
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            group.create_array(
                spec.name, shape=(0, *spec.shape),
                chunks=(spec.chunk_rows, *spec.shape), dtype=spec.dtype, fill_value=0,
                shards=(spec.chunk_rows * spec.shard_chunks, *spec.shape),
                filters=filters, serializer=BytesCodec(), compressors=compressors,
                chunk_key_encoding={'name': 'default', 'separator': '.'})
        _index_at_start(data_root / spec.name / 'zarr.json', fsync)


def _index_at_start(meta_path: Path, fsync: bool) -> None:
    """Declare the shards as shards.py writes them: index first, without a checksum."""
    meta = json.loads(meta_path.read_bytes())
    (sharding,) = [c for c in meta['codecs'] if c['name'] == 'sharding_indexed']
    sharding['configuration']['index_location'] = 'start'
    sharding['configuration']['index_codecs'] = [
        {'name': 'bytes', 'configuration': {'endian': 'little'}}]
    write_file(meta_path, json.dumps(meta, indent=2).encode(), fsync)
