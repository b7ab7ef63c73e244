"""On-disk layout of a store, its two JSON markers and chunk encoding.

::

    <store>/
      realrl_replay.json   identity: format, version, uuid, schema, config, metadata.
                           Written once, last step of creation.
      commit.bin           commit marker: row count, robot names, committed seq per robot, the
                           rows of each field's incomplete last chunk, checksum. Replaced
                           atomically (write, fdatasync, rename) by each commit, last.
      writer.lock          flock-ed by the single writer; holds its pid.
      data/                Zarr v3 group, one array per field; chunk keys 'c.<k>.0...'.
                           Only complete chunks are written, once, before the commit marker
                           that counts them; they never change afterwards.

A reader takes one commit marker, then reads the complete chunks it counts (immutable) and the
tail rows inside it: it sees exactly one commit, never a torn row.
"""
from __future__ import annotations

import json
import os
import zlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
from numcodecs import Blosc

from .errors import StoreError
from .schema import FieldSpec, Schema

FORMAT = 'realrl-replay'
VERSION = 1
IDENTITY_FILE = 'realrl_replay.json'
COMMIT_FILE = 'commit.bin'
COMMIT_MAGIC = b'RRCOMMIT'
COMMIT_END = b'RRCEND\x00\x00'
LOCK_FILE = 'writer.lock'
DATA_DIR = 'data'
PARTIAL_SUFFIX = '.partial'
_SHUFFLE = {'noshuffle': Blosc.NOSHUFFLE, 'shuffle': Blosc.SHUFFLE,
            'bitshuffle': Blosc.BITSHUFFLE}


def field_dir(root: Path, spec: FieldSpec) -> Path:
    return root / DATA_DIR / spec.name


def chunk_name(spec: FieldSpec, k: int) -> str:
    return 'c.' + str(k) + '.0' * len(spec.shape)


def chunk_index(name: str) -> int | None:
    """Row-chunk index of a chunk file name, None for other names."""
    parts = name.split('.')
    if len(parts) < 2 or parts[0] != 'c' or not parts[1].isdigit():
        return None
    if any(p != '0' for p in parts[2:]):
        return None
    return int(parts[1])


class ChunkCodec:
    """Encodes and decodes one field's chunks exactly as its Zarr metadata declares."""

    def __init__(self, spec: FieldSpec):
        self.spec = spec
        self.shape = (spec.chunk_rows, *spec.shape)
        self.nbytes = spec.chunk_rows * spec.row_bytes
        self._blosc = Blosc(cname=spec.codec.cname, clevel=spec.codec.clevel,
                            shuffle=_SHUFFLE[spec.codec.shuffle])

    def encode(self, chunk: np.ndarray) -> bytes:
        assert chunk.shape == self.shape and chunk.dtype == self.spec.dtype
        return self._blosc.encode(np.ascontiguousarray(chunk))

    def decode(self, data: bytes, path: Path, out: np.ndarray | None = None) -> np.ndarray:
        try:
            if out is not None:
                self._blosc.decode(data, out=out)
                return out
            raw = self._blosc.decode(data)
        except Exception as e:  # numcodecs raises RuntimeError or ValueError
            raise StoreError(f'{path}: chunk cannot be decoded ({e}); the store is corrupted')
        if len(raw) != self.nbytes:
            raise StoreError(f'{path}: chunk holds {len(raw)} bytes, expected {self.nbytes}; '
                             'the store is corrupted')
        return np.frombuffer(raw, self.spec.dtype).reshape(self.shape)


def write_chunk(path: Path, data, fsync: bool) -> None:
    """Write a complete chunk in place. Its rows are counted by no commit marker yet, so no
    reader looks at it; a crash midway leaves a file that recovery deletes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data).cast('B')
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fdatasync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data, fsync: bool) -> None:
    """Replace ``path`` atomically with ``data`` (temporary file, optional fdatasync, rename)."""
    tmp = str(path) + PARTIAL_SUFFIX
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data).cast('B')
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fdatasync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _with_crc(doc: dict) -> bytes:
    body = json.dumps(doc, sort_keys=True, separators=(',', ':'))
    crc = zlib.crc32(body.encode())
    return json.dumps({'body': doc, 'crc32': crc}, sort_keys=True).encode()


def _read_json(path: Path, what: str) -> dict:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f'{path.parent}: not a realrl replay store ({path.name} is missing)'
                         ) from None
    except OSError as e:
        raise StoreError(f'{path}: cannot read the {what} file ({e})') from None
    try:
        outer = json.loads(raw)
        doc = outer['body']
        body = json.dumps(doc, sort_keys=True, separators=(',', ':'))
        ok = zlib.crc32(body.encode()) == outer['crc32']
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise StoreError(f'{path}: the {what} file is corrupted (bad JSON or checksum)')
    return doc


@dataclass(frozen=True)
class Identity:
    """Contents of realrl_replay.json."""

    uuid: str
    schema: list
    config: dict
    metadata: dict
    created_ns: int

    def write(self, root: Path, fsync: bool) -> None:
        doc = {'format': FORMAT, 'version': VERSION, 'uuid': self.uuid, 'schema': self.schema,
               'config': self.config, 'metadata': self.metadata, 'created_ns': self.created_ns}
        write_file(root / IDENTITY_FILE, _with_crc(doc), fsync)

    @classmethod
    def read(cls, root: Path) -> Identity:
        if not root.is_dir():
            raise StoreError(f'{root}: not a realrl replay store (no such folder)')
        doc = _read_json(root / IDENTITY_FILE, 'identity')
        if doc.get('format') != FORMAT:
            raise StoreError(f'{root}: not a realrl replay store (format {doc.get("format")!r})')
        if doc.get('version') != VERSION:
            raise StoreError(f'{root}: store format version {doc.get("version")!r} is not '
                             f'supported (this code reads version {VERSION})')
        try:
            return cls(doc['uuid'], doc['schema'], doc['config'], doc['metadata'],
                       doc['created_ns'])
        except KeyError as e:
            raise StoreError(f'{root}: identity file lacks {e}; the store is corrupted') from None


@dataclass(frozen=True)
class CommitMarker:
    """Contents of commit.bin: what is committed, per robot the highest committed seq, and the
    rows of every field's incomplete last chunk (its "tail").

    Binary: magic, header length, JSON header, each field's tail rows (raw, little-endian, in
    schema order), crc32 of all that, end magic. Chunk files hold only complete chunks.
    """

    store_uuid: str
    commit_id: int
    """Number of commits so far (0 at creation)."""
    count: int
    """Rows 0..count-1 are committed and immutable."""
    robots: tuple[str, ...]
    """Robot name of each robot_id code."""
    seqs: tuple[int, ...]
    """Highest committed seq of each robot code."""
    tails: Mapping[str, np.ndarray]
    """Per field, rows count // chunk_rows * chunk_rows .. count-1 (not yet in a chunk file)."""

    def write(self, root: Path, schema: Schema, fsync: bool) -> None:
        header = json.dumps({'store_uuid': self.store_uuid, 'commit_id': self.commit_id,
                             'count': self.count, 'robots': list(self.robots),
                             'seqs': list(self.seqs)}).encode()
        parts = [COMMIT_MAGIC, struct.pack('<I', len(header)), header]
        for spec in schema.fields:
            tail = self.tails[spec.name]
            assert len(tail) == self.count % spec.chunk_rows and tail.dtype == spec.dtype
            if len(tail):
                parts.append(memoryview(np.ascontiguousarray(tail).reshape(-1)).cast('B'))
        crc = 0
        for part in parts:
            crc = zlib.crc32(part, crc)
        parts.append(struct.pack('<I', crc) + COMMIT_END)
        tmp = root / (COMMIT_FILE + PARTIAL_SUFFIX)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            total, written = sum(len(p) for p in parts), os.writev(fd, parts)
            if written != total:  # short write: fall back to a plain loop
                os.lseek(fd, 0, os.SEEK_SET)
                data = memoryview(b''.join(bytes(p) for p in parts))
                while data:
                    data = data[os.write(fd, data):]
            if fsync:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, root / COMMIT_FILE)
        if fsync:
            fsync_dir(root)

    @classmethod
    def read(cls, root: Path, store_uuid: str, schema: Schema) -> CommitMarker:
        path = root / COMMIT_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f'{root}: not a realrl replay store ({COMMIT_FILE} is missing; was '
                             'creation interrupted?)') from None
        except OSError as e:
            raise StoreError(f'{path}: cannot read the commit marker ({e})') from None
        bad = StoreError(f'{path}: the commit marker is corrupted (bad framing or checksum)')
        tail_len = 4 + len(COMMIT_END)
        if (len(raw) < len(COMMIT_MAGIC) + 4 + tail_len or not raw.startswith(COMMIT_MAGIC)
                or not raw.endswith(COMMIT_END)):
            raise bad
        body = memoryview(raw)[:-tail_len]
        (crc,) = struct.unpack_from('<I', raw, len(raw) - tail_len)
        if zlib.crc32(body) != crc:
            raise bad
        (hlen,) = struct.unpack_from('<I', raw, len(COMMIT_MAGIC))
        pos = len(COMMIT_MAGIC) + 4
        try:
            doc = json.loads(bytes(body[pos:pos + hlen]))
            count = int(doc['count'])
            pos += hlen
            tails = {}
            for spec in schema.fields:
                n = count % spec.chunk_rows
                nbytes = n * spec.row_bytes
                if pos + nbytes > len(body):
                    raise ValueError('tails are shorter than the count says')
                tails[spec.name] = np.frombuffer(body[pos:pos + nbytes], spec.dtype).reshape(
                    n, *spec.shape)
                pos += nbytes
            if pos != len(body):
                raise ValueError('unexpected bytes after the tails')
            marker = cls(doc['store_uuid'], int(doc['commit_id']), count, tuple(doc['robots']),
                         tuple(int(s) for s in doc['seqs']), tails)
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f'{path}: malformed commit marker ({e})') from None
        if marker.store_uuid != store_uuid:
            raise StoreError(f'{path}: commit marker belongs to another store '
                             f'({marker.store_uuid}, expected {store_uuid})')
        if marker.count < 0 or len(marker.robots) != len(marker.seqs):
            raise StoreError(f'{path}: inconsistent commit marker')
        return marker
