"""Measures how well a control clock keeps its period, and what scheduling its thread got."""
from __future__ import annotations

import json
from collections import deque

import numpy as np


def period_errors(stamps, period: float) -> np.ndarray:
    """|actual period - nominal| / nominal for each consecutive pair of tick times."""
    d = np.diff(np.asarray(stamps, dtype=np.float64))
    return np.abs(d - period) / period


class PeriodRecorder:
    """Keeps recent tick times; optionally appends all of them to a JSON-lines file.

    Log format: one JSON list of tick times per flush; the ticks among them in which the
    control loop held (nothing applied: the action or label was late) follow as a line
    ``{"held": [times]}``, so ``read_tick_log`` sees every tick and ``read_held_ticks``
    the held ones."""

    def __init__(self, window: int = 200, log_path: str = ''):
        self._recent = deque(maxlen=window)
        self._log_path = log_path
        self._unsaved: list[float] = []
        self._unsaved_held: list[float] = []
        self.held = 0
        """Ticks marked held since the start."""

    def configure(self, log_path: str) -> None:
        self._log_path = log_path

    def record(self, now: float) -> None:
        self._recent.append(now)
        if self._log_path:
            self._unsaved.append(now)
            if len(self._unsaved) >= 100:
                self.flush()

    def mark_held(self) -> None:
        """The tick recorded last held instead of applying an action."""
        self.held += 1
        if self._log_path and self._recent:
            self._unsaved_held.append(self._recent[-1])

    def achieved_hz(self) -> float:
        if len(self._recent) < 2:
            return 0.0
        return (len(self._recent) - 1) / (self._recent[-1] - self._recent[0])

    def flush(self) -> None:
        if self._log_path and (self._unsaved or self._unsaved_held):
            with open(self._log_path, 'a') as f:
                if self._unsaved:
                    f.write(json.dumps(self._unsaved) + '\n')
                if self._unsaved_held:
                    f.write(json.dumps({'held': self._unsaved_held}) + '\n')
            self._unsaved, self._unsaved_held = [], []


def _read_lines(path: str):
    with open(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def read_tick_log(path: str) -> list[float]:
    """Every tick time in a PeriodRecorder log, in order."""
    stamps: list[float] = []
    for entry in _read_lines(path):
        if isinstance(entry, list):
            stamps.extend(entry)
    return stamps


def read_held_ticks(path: str) -> list[float]:
    """The times of the ticks in a PeriodRecorder log in which the loop held."""
    held: list[float] = []
    for entry in _read_lines(path):
        if isinstance(entry, dict):
            held.extend(entry.get('held', []))
    return held
