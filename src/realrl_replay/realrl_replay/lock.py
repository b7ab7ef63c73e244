"""The single-writer lock: fcntl.flock on <store>/writer.lock, which holds the holder's pid."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import StoreLockedError
from .layout import LOCK_FILE


class WriterLock:
    """Held for the life of a ReplayWriter; the kernel releases it if the process dies."""

    def __init__(self, fd: int, path: Path):
        self._fd = fd
        self.path = path

    @classmethod
    def acquire(cls, root: Path) -> WriterLock:
        path = root / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f'pid {holder}' if holder is not None else 'an unknown process'
            raise StoreLockedError(
                f'{root}: another writer holds the store ({who}, lock {path}); a store has one '
                'writer at a time: stop that one first, or open a ReplayReader', holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'{os.getpid()}\n'.encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
