"""A token bucket: bytes sent over a link are paced to a budget (bytes per second)."""
from __future__ import annotations

import threading
import time
from typing import Callable


class TokenBucket:
    """``take(n)`` blocks until ``n`` bytes fit in the budget.

    The bucket holds at most ``burst`` bytes of credit and refills at ``rate`` bytes/s. A
    request larger than the burst is allowed: it waits until the bucket is full, then drives
    it negative, so the long-run rate is still ``rate``. Thread-safe; a rate of ``None``
    means no limit.
    """

    def __init__(self, rate: float | None, burst: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate is not None and rate <= 0:
            raise ValueError(f'rate must be > 0 bytes/s (or None for no limit), got {rate}')
        self.rate = rate
        self.burst = float(burst if burst is not None else (rate or 0) * 0.05 or 1 << 20)
        if self.burst <= 0:
            raise ValueError(f'burst must be > 0 bytes, got {burst}')
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self, n: int) -> float:
        """Wait until ``n`` bytes may go; returns the seconds waited."""
        if self.rate is None:
            return 0.0
        waited = 0.0
        with self._lock:
            self._refill()
            need = min(float(n), self.burst)
            while self._tokens < need:
                delay = (need - self._tokens) / self.rate
                self._sleep(delay)
                waited += delay
                self._refill()
            self._tokens -= n
        return waited
