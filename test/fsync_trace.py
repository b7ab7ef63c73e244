"""Records the durability calls of the code under test, by path: fsync/fdatasync (the path of
the file descriptor, from /proc) and renames (os.replace, os.rename), in the order made."""
from __future__ import annotations

import os


class SyncTrace:
    """Install with ``SyncTrace(monkeypatch)``; ``events`` lists ('sync', path) and
    ('rename', src, dst) tuples (absolute paths)."""

    def __init__(self, monkeypatch):
        self.events: list[tuple] = []
        for name in ('fsync', 'fdatasync'):
            monkeypatch.setattr(os, name, self._sync(getattr(os, name)))
        for name in ('replace', 'rename'):
            monkeypatch.setattr(os, name, self._rename(getattr(os, name)))

    def _sync(self, real):
        def sync(fd):
            self.events.append(('sync', os.readlink(f'/proc/self/fd/{fd}')))
            return real(fd)
        return sync

    def _rename(self, real):
        def rename(src, dst, *args, **kwargs):
            real(src, dst, *args, **kwargs)
            self.events.append(('rename', os.path.abspath(src), os.path.abspath(dst)))
        return rename

    def syncs(self, path) -> list[int]:
        """Positions in ``events`` of the syncs of ``path``."""
        path = os.path.abspath(path)
        return [i for i, e in enumerate(self.events) if e == ('sync', path)]

    def renamed_to(self, path) -> int:
        """Position of the last rename onto ``path``; AssertionError if there was none."""
        path = os.path.abspath(path)
        found = [i for i, e in enumerate(self.events) if e[0] == 'rename' and e[2] == path]
        assert found, f'nothing was renamed onto {path}'
        return found[-1]

    def renamed_from(self, path) -> int:
        path = os.path.abspath(path)
        found = [i for i, e in enumerate(self.events) if e[0] == 'rename' and e[1] == path]
        assert found, f'{path} was never renamed'
        return found[-1]

    def synced_between(self, path, after: int, before: int = 1 << 62) -> bool:
        """Whether ``path`` was synced after event ``after`` and before event ``before``."""
        return any(after < i < before for i in self.syncs(path))
