"""Typed errors of the replay store."""


class StoreError(Exception):
    """A folder is not a usable replay store: foreign, corrupted, locked or full.

    The message names the path and what is wrong. Opening never writes to a folder that raised
    this error on validation.
    """


class StoreLockedError(StoreError):
    """Another writer holds the store's lock; ``holder_pid`` names it (None if unreadable)."""

    def __init__(self, message: str, holder_pid: int | None):
        super().__init__(message)
        self.holder_pid = holder_pid


class RowsEvictedError(IndexError):
    """The rows asked for were evicted by the store's retention (below its watermark)."""
