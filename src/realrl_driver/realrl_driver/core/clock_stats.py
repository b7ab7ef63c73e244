"""Measures how well a control clock keeps its period."""
from __future__ import annotations

import json
from collections import deque

import numpy as np


def period_errors(stamps, period: float) -> np.ndarray:
    """|actual period - nominal| / nominal for each consecutive pair of tick times."""
    d = np.diff(np.asarray(stamps, dtype=np.float64))
    return np.abs(d - period) / period


class PeriodRecorder:
    """Keeps recent tick times; optionally appends all of them to a JSON-lines file."""

    def __init__(self, window: int = 200, log_path: str = ''):
        self._recent = deque(maxlen=window)
        self._log_path = log_path
        self._unsaved: list[float] = []

    def configure(self, log_path: str) -> None:
        self._log_path = log_path

    def record(self, now: float) -> None:
        self._recent.append(now)
        if self._log_path:
            self._unsaved.append(now)
            if len(self._unsaved) >= 100:
                self.flush()

    def achieved_hz(self) -> float:
        if len(self._recent) < 2:
            return 0.0
        return (len(self._recent) - 1) / (self._recent[-1] - self._recent[0])

    def flush(self) -> None:
        if self._log_path and self._unsaved:
            with open(self._log_path, 'a') as f:
                f.write(json.dumps(self._unsaved) + '\n')
            self._unsaved = []


def read_tick_log(path: str) -> list[float]:
    stamps: list[float] = []
    with open(path) as f:
        for line in f:
            stamps.extend(json.loads(line))
    return stamps
