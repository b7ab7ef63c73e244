"""On-disk layout of a store: identity file, commit marker slots, chunk encoding.

::

    <store>/
      realrl_replay.json   identity: format, version, uuid, schema, config, metadata.
                           Written once, last step of creation.
      commit.0, commit.1   commit marker slots: commit n is written in place into slot n % 2
                           and fdatasync-ed, last; the valid slot with the highest commit id is
                           the store's state. A torn slot (crash mid-write) fails its checksum,
                           and the other slot holds the commit before it.
      writer.lock          flock-ed by the single writer; holds its pid.
      data/                Zarr v3 group, one array per field. Format 3: shard files
                           'c.<j>.0...', each holding chunks j*S .. j*S+S-1 of its field with
                           their index at the start (shards.py). Only complete chunks are
                           written, once, before the commit marker that counts them; they never
                           change afterwards (retention deletes whole shards below the first
                           valid row).

Format 2 (a file per chunk, 'c.<k>.0...') and format 1 (one marker, commit.bin, replaced by
rename) are read, never written.
"""
from __future__ import annotations

import json
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
from numcodecs import Blosc

from . import pixel_delta
from .errors import StoreError
from .schema import FieldSpec, Schema

FORMAT = 'realrl-replay'
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
IDENTITY_FILE = 'realrl_replay.json'
COMMIT_FILE = 'commit.bin'  # format 1
COMMIT_SLOTS = ('commit.0', 'commit.1')
COMMIT_MAGIC = b'RRCOMMIT'
COMMIT_END = b'RRCEND\x00\x00'
LOCK_FILE = 'writer.lock'
DATA_DIR = 'data'
PARTIAL_SUFFIX = '.partial'
_SHUFFLE = {'noshuffle': Blosc.NOSHUFFLE, 'shuffle': Blosc.SHUFFLE,
            'bitshuffle': Blosc.BITSHUFFLE}


def field_dir(root: Path, spec: FieldSpec) -> Path:
    """Folder of a field's chunks in the store at root."""
    return root / DATA_DIR / spec.name


def chunk_name(spec: FieldSpec, k: int) -> str:
    """File name of chunk ``k`` (format 2) or of shard ``k`` (format 3)."""
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
        self.delta = spec.codec.filter == 'delta'
        self.pixel = spec.codec.filter == 'pixel_delta'
        if (self.delta or self.pixel) and not spec.is_image:
            raise StoreError(f'field {spec.name!r}: the {spec.codec.filter} filter needs '
                             f'(H, W, C) uint8 rows, got {spec.shape} {spec.dtype}')
        self._blosc = Blosc(cname=spec.codec.cname, clevel=spec.codec.clevel,
                            shuffle=_SHUFFLE[spec.codec.shuffle])

    def encode(self, chunk: np.ndarray) -> bytes:
        assert chunk.shape == self.shape and chunk.dtype == self.spec.dtype
        if self.pixel:
            return self._blosc.encode(pixel_delta.encode(chunk))
        if self.delta:
            return self._blosc.encode(delta_encode(chunk))
        return self._blosc.encode(np.ascontiguousarray(chunk))

    def decode(self, data: bytes, path: Path, out: np.ndarray | None = None) -> np.ndarray:
        try:
            if out is not None and not (self.delta or self.pixel):
                self._blosc.decode(data, out=out)
                return out
            if self.pixel:  # decoded in place: into a writable buffer of the checked size
                held = _blosc_nbytes(data)
                if held != self.nbytes:
                    raise ValueError(f'it holds {held} bytes, expected {self.nbytes}')
                raw = (np.empty(self.nbytes, np.uint8) if out is None
                       else pixel_delta.scratch('raw', self.nbytes))
                self._blosc.decode(data, out=raw)
            else:
                raw = self._blosc.decode(data)
        except Exception as e:  # noqa: BLE001 - numcodecs raises RuntimeError or ValueError,
            # but any failure to decode a chunk's bytes means the store is corrupted
            raise StoreError(f'{path}: chunk cannot be decoded ({e}); the store is corrupted')
        if len(raw) != self.nbytes:
            raise StoreError(f'{path}: chunk holds {len(raw)} bytes, expected {self.nbytes}; '
                             'the store is corrupted')
        if self.pixel:
            return pixel_delta.decode(raw, self.shape, out)
        if self.delta:
            return delta_decode(np.frombuffer(raw, np.uint8), self.shape, out)
        return np.frombuffer(raw, self.spec.dtype).reshape(self.shape)


def _blosc_nbytes(data) -> int:
    """Uncompressed size in a Blosc frame's header (bytes 4-7, little-endian); -1 if the
    frame is too short to have one."""
    view = memoryview(data).cast('B')
    return struct.unpack_from('<I', view, 4)[0] if len(view) >= 16 else -1


def delta_encode(chunk: np.ndarray) -> np.ndarray:
    """Zarr's transpose(0, 3, 1, 2) then numcodecs.delta(|u1): flat byte differences of the
    channels-first chunk (uint8, wrapping)."""
    flat = np.ascontiguousarray(chunk.transpose(0, 3, 1, 2)).reshape(-1)
    out = np.empty_like(flat)
    out[:1] = flat[:1]
    np.subtract(flat[1:], flat[:-1], out=out[1:])
    return out


def delta_decode(flat: np.ndarray, shape: tuple, out: np.ndarray | None = None) -> np.ndarray:
    """Inverse of delta_encode: a flat cumulative sum, computed as prefix sums along image
    lines (contiguous adds over all lines at once) plus each line's carry."""
    n, h, w, c = shape
    lines = np.ascontiguousarray(flat.reshape(n * c * h, w).T)  # (w, lines)
    for j in range(1, w):
        np.add(lines[j], lines[j - 1], out=lines[j])
    carry = np.cumsum(lines[-1], dtype=np.uint8)
    lines[:, 1:] += carry[:-1]
    chw = lines.reshape(w, n, c, h).transpose(1, 3, 0, 2)
    if out is None:
        return np.ascontiguousarray(chw)
    np.copyto(out, chw)
    return out


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
    """Makes the folder's entries durable (fsync of the directory)."""
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
    version: int = VERSION

    def write(self, root: Path, fsync: bool) -> None:
        doc = {'format': FORMAT, 'version': self.version, 'uuid': self.uuid, 'schema': self.schema,
               'config': self.config, 'metadata': self.metadata, 'created_ns': self.created_ns}
        write_file(root / IDENTITY_FILE, _with_crc(doc), fsync)

    @classmethod
    def read(cls, root: Path) -> Identity:
        if not root.is_dir():
            raise StoreError(f'{root}: not a realrl replay store (no such folder)')
        doc = _read_json(root / IDENTITY_FILE, 'identity')
        if doc.get('format') != FORMAT:
            raise StoreError(f'{root}: not a realrl replay store (format {doc.get("format")!r})')
        if doc.get('version') not in READABLE_VERSIONS:
            raise StoreError(f'{root}: store format version {doc.get("version")!r} is not '
                             f'supported (this code reads versions {READABLE_VERSIONS})')
        try:
            return cls(doc['uuid'], doc['schema'], doc['config'], doc['metadata'],
                       doc['created_ns'], doc['version'])
        except KeyError as e:
            raise StoreError(f'{root}: identity file lacks {e}; the store is corrupted') from None


@dataclass(frozen=True)
class CommitMarker:
    """What is committed: the row count, per robot the highest committed seq, the rows of
    every field's incomplete last chunk (its "tail"), and the retention watermark.

    Binary: magic, total length (u64), header length (u32), JSON header, each field's tail
    rows (raw, little-endian, in schema order), crc32 of all that, end magic. Bytes after the
    total length are left-overs of a longer earlier commit in the same slot.
    """

    store_uuid: str
    commit_id: int
    """Number of commits so far (0 at creation)."""
    count: int
    """Rows 0..count-1 were committed; rows first..count-1 are on disk and immutable."""
    robots: tuple[str, ...]
    """Robot name of each robot_id code."""
    seqs: tuple[int, ...]
    """Highest committed seq of each robot code."""
    tails: Mapping[str, np.ndarray]
    """Per field, rows count // chunk_rows * chunk_rows .. count-1 (not yet in a chunk file)."""
    first: int = 0
    """Retention watermark: rows below it are evicted (their whole chunks deleted)."""
    min_episode: tuple[int, ...] = ()
    """Per robot code, the lowest episode_id still valid (episodes cut by the watermark are
    evicted whole); missing codes: all valid."""
    wall_ns: int = 0
    """Wall-clock time of the commit."""
    episodes: tuple[int, ...] | None = None
    """Per robot code, the highest committed episode_id (-1: none, or no episode_id field);
    None: a marker written before markers carried it (the writer scans the store once)."""

    def encode(self, schema: Schema) -> list:
        header = json.dumps({'store_uuid': self.store_uuid, 'commit_id': self.commit_id,
                             'count': self.count, 'robots': list(self.robots),
                             'seqs': list(self.seqs), 'first': self.first,
                             'min_episode': list(self.min_episode),
                             'wall_ns': self.wall_ns or time.time_ns(),
                             **({} if self.episodes is None
                                else {'episodes': list(self.episodes)})}).encode()
        parts = [struct.pack('<I', len(header)), header]
        for spec in schema.fields:
            tail = self.tails[spec.name]
            assert len(tail) == self.count % spec.chunk_rows and tail.dtype == spec.dtype
            if len(tail):
                parts.append(memoryview(np.ascontiguousarray(tail).reshape(-1)).cast('B'))
        total = len(COMMIT_MAGIC) + 8 + sum(len(p) for p in parts) + 4 + len(COMMIT_END)
        parts.insert(0, COMMIT_MAGIC + struct.pack('<Q', total))
        crc = 0
        for part in parts:
            crc = zlib.crc32(part, crc)
        parts.append(struct.pack('<I', crc) + COMMIT_END)
        return parts

    @classmethod
    def decode(cls, raw: bytes, path: Path, store_uuid: str, schema: Schema,
               legacy: bool = False) -> CommitMarker:
        bad = StoreError(f'{path}: the commit marker is corrupted (bad framing or checksum)')
        tail_len = 4 + len(COMMIT_END)
        head = len(COMMIT_MAGIC) + (0 if legacy else 8)
        if len(raw) < head + 4 + tail_len or not raw.startswith(COMMIT_MAGIC):
            raise bad
        if not legacy:
            (total,) = struct.unpack_from('<Q', raw, len(COMMIT_MAGIC))
            if total > len(raw) or total < head + 4 + tail_len:
                raise bad
            raw = raw[:total]
        if not raw.endswith(COMMIT_END):
            raise bad
        body = memoryview(raw)[:-tail_len]
        (crc,) = struct.unpack_from('<I', raw, len(raw) - tail_len)
        if zlib.crc32(body) != crc:
            raise bad
        (hlen,) = struct.unpack_from('<I', raw, head)
        pos = head + 4
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
                         tuple(int(s) for s in doc['seqs']), tails, int(doc.get('first', 0)),
                         tuple(int(e) for e in doc.get('min_episode', ())),
                         int(doc.get('wall_ns', 0)),
                         None if doc.get('episodes') is None
                         else tuple(int(e) for e in doc['episodes']))
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f'{path}: malformed commit marker ({e})') from None
        if marker.store_uuid != store_uuid:
            raise StoreError(f'{path}: commit marker belongs to another store '
                             f'({marker.store_uuid}, expected {store_uuid})')
        if (marker.count < 0 or len(marker.robots) != len(marker.seqs)
                or not 0 <= marker.first <= marker.count
                or (marker.episodes is not None and len(marker.episodes) != len(marker.robots))):
            raise StoreError(f'{path}: inconsistent commit marker')
        return marker

    @classmethod
    def read(cls, root: Path, store_uuid: str, schema: Schema, version: int = VERSION,
             attempts: int = 5) -> CommitMarker:
        """The store's current commit: the valid slot with the highest commit id.

        Both slots invalid at once happens to a reader only if the writer rewrote both while
        it read them; that is retried ``attempts`` times before the store is called corrupted.
        """
        if version == 1:
            path = root / COMMIT_FILE
            return cls.decode(_read_marker_file(root, path), path, store_uuid, schema, True)
        for attempt in range(attempts):
            best, error = None, None
            for name in COMMIT_SLOTS:
                path = root / name
                raw = _read_marker_file(root, path)
                if not raw:
                    continue  # slot not written yet
                try:
                    marker = cls.decode(raw, path, store_uuid, schema)
                except StoreError as e:
                    error = error or e
                    continue
                if best is None or marker.commit_id > best.commit_id:
                    best = marker
            if best is not None:
                return best
            if attempt + 1 < attempts:
                time.sleep(0.01 * (attempt + 1))
        raise error or StoreError(f'{root}: both commit marker slots are empty; the store is '
                                  'corrupted')


def _read_marker_file(root: Path, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f'{root}: not a realrl replay store ({path.name} is missing; was '
                         'creation interrupted?)') from None
    except OSError as e:
        raise StoreError(f'{path}: cannot read the commit marker ({e})') from None


class MarkerSlots:
    """The writer's two open marker slots; write() puts commit n into slot n % 2."""

    def __init__(self, root: Path):
        self._fds = []
        try:
            for name in COMMIT_SLOTS:
                self._fds.append(os.open(root / name, os.O_WRONLY))
        except OSError:
            self.close()
            raise

    @staticmethod
    def create(root: Path, marker: CommitMarker, schema: Schema, fsync: bool) -> None:
        """Lay out both slots of a new store: commit 0 in slot 0, slot 1 empty."""
        for i, name in enumerate(COMMIT_SLOTS):
            fd = os.open(root / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                if i == 0:
                    _write_all(fd, marker.encode(schema))
                if fsync:
                    os.fdatasync(fd)
            finally:
                os.close(fd)

    def write(self, marker: CommitMarker, schema: Schema, fsync: bool) -> None:
        fd = self._fds[marker.commit_id % 2]
        _write_all(fd, marker.encode(schema))
        if fsync:
            os.fdatasync(fd)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


def _write_all(fd: int, parts: list) -> None:
    """Write ``parts`` at offset 0 of ``fd``."""
    total, written = sum(len(p) for p in parts), os.pwritev(fd, parts, 0)
    if written != total:  # short write: fall back to a plain loop
        data = memoryview(b''.join(bytes(p) for p in parts))
        pos = 0
        while pos < len(data):
            pos += os.pwrite(fd, data[pos:], pos)
