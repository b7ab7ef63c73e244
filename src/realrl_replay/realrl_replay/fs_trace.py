"""Recording a process's file-system operations on one folder, and the crash states they allow.

``Recorder`` wraps the ``os`` functions the store's code writes with (open, write, pwrite,
pwritev, ftruncate, fsync, fdatasync, rename/replace, unlink, mkdir, close) while it is
entered, and logs every operation on a file or folder under its root, in the order the calls
returned (a lock serialises them). Nothing is faked: the calls go to the real file system.

``CrashStates`` turns that log into the folders a power cut could leave, by the rules of the
ALICE / CrashMonkey method with POSIX's promises only:

* a file's content operations (writes, truncations) are durable once an fsync/fdatasync of
  that file returned after them; those after its last completed sync may each have reached the
  disk or not (any subset), and a write may be torn at 512-byte sectors (any subset of the
  sectors it covers, in file offsets);
* a folder's entries (create, unlink, rename, mkdir) are durable once an fsync of that folder
  returned after them; later ones may each have happened or not (a file whose creation did not
  persist is absent, whatever was synced into it).

What the model leaves out: data reaching the disk in a different order *within* a sector, a
sector holding bytes that were never written (garbage instead of old bytes or zeros), renames
across folders (applied in folder-sync order), metadata other than names and sizes, and
devices that lie about flushes.
"""
from __future__ import annotations

import hashlib
import os
import random
import threading
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Iterator

SECTOR = 512
CONTENT = ('write', 'truncate')
ENTRIES = ('create', 'unlink', 'rename', 'mkdir')
_WRAPPED = ('open', 'close', 'write', 'pwrite', 'pwritev', 'ftruncate', 'fsync', 'fdatasync',
            'replace', 'rename', 'unlink', 'mkdir')


@dataclass(frozen=True)
class Op:
    """One recorded operation. ``path``/``dst`` are relative to the recorder's root."""

    kind: str
    """write | truncate | sync (of a file) | create | unlink | rename | mkdir | dirsync | ack"""
    inode: int = -1
    """The file written, truncated, synced or created."""
    path: str = ''
    """create/unlink/mkdir: the name; rename: the source; dirsync: the folder."""
    dst: str = ''
    """rename: the target name."""
    offset: int = 0
    """write: the file offset; truncate: the new size; ack: the rows acknowledged."""
    data: bytes = b''

    @property
    def folder(self) -> str:
        """The folder whose fsync makes this entry operation durable."""
        if self.kind == 'dirsync':
            return self.path
        return os.path.dirname(self.dst or self.path) or '.'


@dataclass
class Snapshot:
    """Every file and folder under a root: the state a trace starts from (taken as durable)."""

    files: dict[str, bytes]
    dirs: set[str]

    @classmethod
    def take(cls, root: Path) -> Snapshot:
        files, dirs = {}, set()
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            for d in dirnames:
                dirs.add(os.path.normpath(os.path.join(rel, d)))
            for f in filenames:
                files[os.path.normpath(os.path.join(rel, f))] = Path(dirpath, f).read_bytes()
        return cls(files, dirs)


class Recorder:
    """Context manager: while entered, every write-side ``os`` call under ``root`` is logged."""

    def __init__(self, root: str | os.PathLike, ignore: tuple[str, ...] = ()):
        """``ignore``: names (relative to root) whose operations are not logged."""
        self.root = os.path.abspath(root)
        self.ignore = frozenset(ignore)
        self.snapshot = Snapshot.take(Path(self.root))
        self.ops: list[Op] = []
        self._names = {name: i for i, name in enumerate(sorted(self.snapshot.files))}
        self._dirs = set(self.snapshot.dirs) | {'.'}
        self._next_inode = len(self._names)
        self._fds: dict[int, tuple[str, object]] = {}
        self._pos: dict[int, int] = {}
        self._lock = threading.RLock()
        self._real: dict = {}

    def ack(self, rows: int) -> None:
        """Log that the first ``rows`` transitions were acknowledged (reported durable)."""
        with self._lock:
            self.ops.append(Op('ack', offset=rows))

    def __enter__(self) -> Recorder:
        self._real = {name: getattr(os, name) for name in _WRAPPED}
        for name in _WRAPPED:
            setattr(os, name, getattr(self, '_' + name))
        return self

    def __exit__(self, *exc) -> None:
        for name, fn in self._real.items():
            setattr(os, name, fn)

    # ------------------------------------------------------------------ helpers
    def _rel(self, path) -> str | None:
        if isinstance(path, int):
            return None
        p = os.path.abspath(os.fsdecode(os.fspath(path)))
        if p == self.root:
            return '.'
        return p[len(self.root) + 1:] if p.startswith(self.root + os.sep) else None

    def _file(self, fd: int) -> int | None:
        entry = self._fds.get(fd)
        return entry[1] if entry is not None and entry[0] == 'file' else None

    # ------------------------------------------------------------------ wrapped calls
    def _open(self, path, flags, mode=0o777, *, dir_fd=None):
        rel = self._rel(path) if dir_fd is None else None
        if rel is None or rel in self.ignore:
            return self._real['open'](path, flags, mode, dir_fd=dir_fd)
        with self._lock:
            fd = self._real['open'](path, flags, mode)
            if rel in self._dirs:
                self._fds[fd] = ('dir', rel)
                return fd
            inode = self._names.get(rel)
            if inode is None:  # O_CREAT made it
                inode = self._names[rel] = self._next_inode
                self._next_inode += 1
                self.ops.append(Op('create', inode, rel))
            elif flags & os.O_TRUNC:
                self.ops.append(Op('truncate', inode))
            if flags & os.O_APPEND:
                raise NotImplementedError(f'{rel}: O_APPEND is not modelled by the recorder')
            self._fds[fd], self._pos[fd] = ('file', inode), 0
            return fd

    def _close(self, fd):
        with self._lock:
            self._fds.pop(fd, None)
            self._pos.pop(fd, None)
            return self._real['close'](fd)

    def _written(self, fd, data, n, offset) -> None:
        inode = self._file(fd)
        if inode is not None and n:
            self.ops.append(Op('write', inode, offset=offset,
                               data=bytes(memoryview(data).cast('B')[:n])))

    def _write(self, fd, data):
        with self._lock:
            n = self._real['write'](fd, data)
            if fd in self._pos:
                self._written(fd, data, n, self._pos[fd])
                self._pos[fd] += n
            return n

    def _pwrite(self, fd, data, offset):
        with self._lock:
            n = self._real['pwrite'](fd, data, offset)
            self._written(fd, data, n, offset)
            return n

    def _pwritev(self, fd, buffers, offset, *args):
        buffers = list(buffers)
        with self._lock:
            n = self._real['pwritev'](fd, buffers, offset, *args)
            if self._file(fd) is not None:
                self._written(fd, b''.join(bytes(memoryview(b).cast('B')) for b in buffers), n,
                              offset)
            return n

    def _ftruncate(self, fd, size):
        with self._lock:
            self._real['ftruncate'](fd, size)
            inode = self._file(fd)
            if inode is not None:
                self.ops.append(Op('truncate', inode, offset=size))

    def _sync(self, name, fd):
        with self._lock:
            self._real[name](fd)
            entry = self._fds.get(fd)
            if entry is not None:
                self.ops.append(Op('sync', entry[1]) if entry[0] == 'file'
                                else Op('dirsync', path=entry[1]))

    def _fsync(self, fd):
        self._sync('fsync', fd)

    def _fdatasync(self, fd):
        self._sync('fdatasync', fd)

    def _move(self, name, src, dst, **kw):
        a, b = self._rel(src), self._rel(dst)
        if a is None and b is None:
            return self._real[name](src, dst, **kw)
        if a is None or b is None or kw:
            raise NotImplementedError(f'{src} -> {dst}: renames across the traced root')
        with self._lock:
            self._real[name](src, dst)
            if a in self._dirs:
                raise NotImplementedError(f'{a}: folder renames are not modelled')
            self._names[b] = self._names.pop(a)
            self.ops.append(Op('rename', self._names[b], a, b))

    def _replace(self, src, dst, **kw):
        self._move('replace', src, dst, **kw)

    def _rename(self, src, dst, **kw):
        self._move('rename', src, dst, **kw)

    def _unlink(self, path, *, dir_fd=None):
        rel = self._rel(path) if dir_fd is None else None
        if rel is None:
            return self._real['unlink'](path, dir_fd=dir_fd)
        with self._lock:
            self._real['unlink'](path)
            self._names.pop(rel, None)
            self.ops.append(Op('unlink', path=rel))

    def _mkdir(self, path, mode=0o777, *, dir_fd=None):
        rel = self._rel(path) if dir_fd is None else None
        if rel is None:
            return self._real['mkdir'](path, mode, dir_fd=dir_fd)
        with self._lock:
            self._real['mkdir'](path, mode)
            self._dirs.add(rel)
            self.ops.append(Op('mkdir', path=rel))


@dataclass
class CrashState:
    """One folder a crash could leave: file contents by name, folders, rows acknowledged."""

    files: dict[str, bytes | bytearray]
    """Contents by name (valid until the CrashStates that gave it advances)."""
    dirs: set[str]
    acked: int
    point: int
    """The crash came after ops[:point]."""
    digests: dict[str, bytes] = field(default_factory=dict)
    """Known digests of some files' contents."""

    def key(self) -> bytes:
        """Digest of the files, folders and acknowledged rows."""
        h = hashlib.blake2b(digest_size=16)
        h.update(str(self.acked).encode() + b'\0')
        for name in sorted(self.files):
            digest = self.digests.get(name) or hashlib.blake2b(self.files[name]).digest()
            h.update(name.encode() + b'\0' + digest)
        h.update('\0'.join(sorted(self.dirs)).encode())
        return h.digest()

    def materialize(self, root: Path) -> None:
        """Write this state into ``root`` (absent)."""
        root.mkdir(parents=True)
        for d in sorted(self.dirs):
            (root / d).mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (root / name).write_bytes(data)


def _apply(content: bytearray, op: Op, sectors: tuple[tuple[int, int], ...] | None = None
           ) -> None:
    """Apply a content op (a write restricted to ``sectors``, (start, end) in op.data)."""
    if op.kind == 'truncate':
        del content[op.offset:]
        content.extend(bytes(op.offset - len(content)))
        return
    for lo, hi in sectors or ((0, len(op.data)),):
        end = op.offset + hi
        if end > len(content):
            content.extend(bytes(end - len(content)))
        content[op.offset + lo:end] = op.data[lo:hi]


def sectors_of(op: Op) -> list[tuple[int, int]]:
    """(start, end) in ``op.data`` of each 512-byte sector of the file that the write covers."""
    cuts, pos = [], 0
    while pos < len(op.data):
        nxt = min(len(op.data), (op.offset + pos) // SECTOR * SECTOR + SECTOR - op.offset)
        cuts.append((pos, nxt))
        pos = nxt
    return cuts


class CrashStates:
    """Crash states of a trace, point by point (a point k: the crash came after ops[:k])."""

    def __init__(self, snapshot: Snapshot, ops: list[Op]):
        self.snapshot, self.ops = snapshot, ops
        names = sorted(snapshot.files)
        self._base = {i: bytearray(snapshot.files[n]) for i, n in enumerate(names)}
        self._names = dict(zip(names, range(len(names))))
        self._dirs = set(snapshot.dirs)
        # index of the sync that makes op i durable (len(ops) if none does)
        self._synced_by = [len(ops)] * len(ops)
        waiting: dict[tuple, list[int]] = {}
        for i, op in enumerate(ops):
            if op.kind in ('sync', 'dirsync'):
                obj = ('f', op.inode) if op.kind == 'sync' else ('d', op.path)
                for j in waiting.pop(obj, []):
                    self._synced_by[j] = i
            elif op.kind in CONTENT:
                waiting.setdefault(('f', op.inode), []).append(i)
            elif op.kind in ENTRIES:
                waiting.setdefault(('d', op.folder), []).append(i)
        self._point, self._pending, self._acked = 0, [], 0
        self._digests: dict[int, bytes] = {}   # of base contents

    def points(self) -> list[int]:
        """Crash points worth checking: after each operation not followed by an ack (a crash
        just before an ack leaves the same files as one just after, with fewer acks)."""
        n = len(self.ops)
        return [k for k in range(n + 1) if k == n or self.ops[k].kind != 'ack']

    def advance(self, k: int) -> list[int]:
        """Move to crash point ``k`` (increasing); return the pending ops' indices."""
        assert k >= self._point
        for i in range(self._point, k):
            op = self.ops[i]
            if op.kind == 'ack':
                self._acked = max(self._acked, op.offset)
            elif op.kind in CONTENT or op.kind in ENTRIES:
                self._pending.append(i)
            if op.kind in ('sync', 'dirsync'):
                done = [j for j in self._pending if self._synced_by[j] == i]
                for j in done:
                    self._apply_base(self.ops[j])
                self._pending = [j for j in self._pending if self._synced_by[j] != i]
        self._point = k
        return list(self._pending)

    def _apply_base(self, op: Op) -> None:
        if op.kind in CONTENT:
            self._digests.pop(op.inode, None)
            _apply(self._base.setdefault(op.inode, bytearray()), op)
        else:
            _apply_entry(self._names, self._dirs, op)

    def state(self, chosen: dict[int, tuple | None]) -> CrashState:
        """The state at the current point with the pending ops in ``chosen`` persisted
        (value None: whole; else the sectors persisted)."""
        names, dirs = dict(self._names), set(self._dirs)
        changed: dict[int, bytearray] = {}
        for i in sorted(chosen):
            op = self.ops[i]
            if op.kind in CONTENT:
                if op.inode not in changed:
                    changed[op.inode] = bytearray(self._base.get(op.inode, b''))
                _apply(changed[op.inode], op, chosen[i])
            else:
                _apply_entry(names, dirs, op)
        files, digests = {}, {}
        for name, inode in names.items():
            data = changed.get(inode)
            if data is None:   # shared with the base until the next advance()
                files[name] = self._base.setdefault(inode, bytearray())
                if inode not in self._digests:
                    self._digests[inode] = hashlib.blake2b(files[name]).digest()
                digests[name] = self._digests[inode]
            else:
                files[name] = data
        return CrashState(files, dirs, self._acked, self._point, digests)

    def sample(self, budget: int, rnd: random.Random, seen: set[bytes] | None = None
               ) -> Iterator[CrashState]:
        """Up to ``budget`` states at the current point, none of them in ``seen`` (updated):
        every subset of the pending ops when there are few, else none, all, in-order prefixes
        and random subsets; torn variants of multi-sector writes throughout."""
        seen = set() if seen is None else seen
        given = 0
        for chosen in _choices(self._pending, self.ops, budget, rnd):
            state = self.state(chosen)
            key = state.key()
            if key not in seen:
                seen.add(key)
                yield state
                given += 1
                if given >= budget:
                    return


def _apply_entry(names: dict[str, int], dirs: set[str], op: Op) -> None:
    if op.kind == 'create':
        names[op.path] = op.inode
    elif op.kind == 'unlink':
        names.pop(op.path, None)
    elif op.kind == 'rename':
        if names.get(op.path) == op.inode:  # the source's creation may not have persisted
            names[op.dst] = names.pop(op.path)
    elif op.kind == 'mkdir':
        dirs.add(op.path)


def _torn(op: Op, rnd: random.Random) -> tuple | None:
    """A random torn version of a write (a prefix or any subset of its sectors), or None."""
    if op.kind != 'write':
        return None
    cuts = sectors_of(op)
    if len(cuts) < 2:
        return None
    if rnd.random() < 0.5:
        return tuple(cuts[:rnd.randrange(1, len(cuts))])
    kept = tuple(c for c in cuts if rnd.random() < 0.5)
    return kept if kept and len(kept) < len(cuts) else (cuts[0],)


def _choices(pending: list[int], ops: list[Op], budget: int, rnd: random.Random
             ) -> Iterator[dict[int, tuple | None]]:
    n = len(pending)
    yield {i: None for i in pending}   # everything reached the disk (what SIGKILL leaves)
    yield {}
    if n and 2 ** n <= budget:
        for bits in product((False, True), repeat=n):
            yield {i: None for i, b in zip(pending, bits) if b}
    attempts = 0
    while n and attempts < 4 * budget:
        attempts += 1
        mode = rnd.random()
        if mode < 0.2:    # in order up to some op, the last one maybe torn
            j = rnd.randrange(n)
            chosen = {i: None for i in pending[:j]}
            chosen[pending[j]] = _torn(ops[pending[j]], rnd)
        else:             # any subset, some writes torn
            chosen = {i: (_torn(ops[i], rnd) if rnd.random() < 0.3 else None)
                      for i in pending if rnd.random() < 0.5}
        yield chosen


def replay_all(snapshot: Snapshot, ops: list[Op]) -> CrashState:
    """The state with every operation persisted (must equal the folder after the trace)."""
    states = CrashStates(snapshot, ops)
    return states.state(dict.fromkeys(states.advance(len(ops))))
