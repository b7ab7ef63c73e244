"""TensorBoard event files of a run, written by the learner (no ROS here).

Keys are namespaced as Stable-Baselines3 does:

- ``train/``: the SAC update's losses and temperature (``Trainer.last_metrics``), updates.
- ``rollout/``: per finished episode, from the run's ``metrics/episodes.jsonl`` (the monitor
  writes it): ``success_rate`` (over the last ``window`` episodes), ``episode_return``,
  ``intervention_rate`` (intervened steps / steps of those episodes), ``policy_version``.
- ``time/``: ``updates_per_s``, ``stored_per_s`` (throughput), ``publish_s`` (packing and
  publishing one weights version), ``staleness_mean``/``staleness_max`` (the learner's
  version minus the ``policy_version`` of rows drawn uniformly from the sampler's window,
  i.e. what a batch holds at this moment; rows written before any weights have version 0).
- ``system/``: resident memory (MiB) and threads of the learner process.

The step of every scalar is the number of SAC updates, so curves of a resumed run continue.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

STALENESS_SAMPLE = 256
"""Rows drawn per staleness measurement."""


def tensorboard_dir_for(metrics_path: str | os.PathLike) -> Path:
    """Where a run's event files go: ``<run>/tensorboard`` for ``<run>/metrics/learner.jsonl``."""
    return Path(metrics_path).resolve().parent.parent / 'tensorboard'


def _rss_mib() -> float:
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
    except OSError:
        return float('nan')


class EpisodeTail:
    """Reads the lines appended to a JSON-lines file since the last call."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._offset = 0

    def new_rows(self) -> list[dict]:
        """Whole lines written since the previous call (a line still being written waits)."""
        try:
            with open(self.path, 'rb') as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b'\n') + 1
        self._offset += end
        rows = []
        for line in data[:end].splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
        return rows


class TensorBoardLog:
    """Writes the learner's scalars; ``log(trainer)`` at the metrics period."""

    def __init__(self, log_dir: str | os.PathLike, episodes_path: str | os.PathLike | None,
                 window: int = 20, seed: int = 0):
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when used
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(str(self.log_dir))
        self._episodes = EpisodeTail(Path(episodes_path)) if episodes_path else None
        self._recent = deque(maxlen=window)
        self._rng = np.random.default_rng(seed)
        self._mark: tuple[float, int, int] | None = None  # (time, updates, stored)
        self._publish_s: list[float] = []
        self._lock = threading.Lock()

    def publish_time(self, seconds: float) -> None:
        """One weights version took this long to pack and publish."""
        with self._lock:
            self._publish_s.append(seconds)

    def log(self, trainer, now: float | None = None) -> None:
        """Everything the trainer and the run folder tell since the previous call."""
        now = time.monotonic() if now is None else now
        step = int(trainer.sac.updates)
        w = self.writer
        for key, value in trainer.last_metrics.items():
            if key.startswith('train/'):
                w.add_scalar(key, float(value), step)
        w.add_scalar('train/updates', step, step)
        w.add_scalar('train/policy_version', trainer.version, step)
        stored = int(trainer.online.count)
        if self._mark is not None and now > self._mark[0]:
            dt = now - self._mark[0]
            w.add_scalar('time/updates_per_s', (step - self._mark[1]) / dt, step)
            w.add_scalar('time/stored_per_s', (stored - self._mark[2]) / dt, step)
        self._mark = (now, step, stored)
        with self._lock:
            published, self._publish_s = self._publish_s, []
        if published:
            w.add_scalar('time/publish_s', float(np.mean(published)), step)
        staleness = self.staleness(trainer)
        if staleness is not None:
            w.add_scalar('time/staleness_mean', float(staleness.mean()), step)
            w.add_scalar('time/staleness_max', float(staleness.max()), step)
        self._log_episodes(step)
        w.add_scalar('system/rss_mib', _rss_mib(), step)
        w.add_scalar('system/threads', threading.active_count(), step)
        w.flush()

    def staleness(self, trainer) -> np.ndarray | None:
        """Learner version minus the policy version of rows drawn as the sampler draws them
        (uniformly over its window); None before the store has rows."""
        sampler = trainer.online
        if sampler.count == 0 or 'policy_version' not in trainer.reader.schema.by_name:
            return None
        stop = sampler.count
        start = max(sampler.first, stop - sampler.rows)
        if stop <= start:
            return None
        rows = np.sort(self._rng.integers(start, stop, size=STALENESS_SAMPLE))
        got = trainer.reader.read(rows, ['policy_version'])
        return trainer.version - np.asarray(got['policy_version'], dtype=np.int64)

    def _log_episodes(self, step: int) -> None:
        if self._episodes is None:
            return
        rows = self._episodes.new_rows()
        if not rows:
            return
        steps = interventions = 0
        for ep in rows:
            self._recent.append(float(bool(ep.get('success'))))
            w = self.writer
            w.add_scalar('rollout/episode_return', float(ep.get('return', 0.0)), step)
            w.add_scalar('rollout/policy_version', int(ep.get('policy_version', 0)), step)
            steps += int(ep.get('steps', 0))
            interventions += int(ep.get('interventions', 0))
        self.writer.add_scalar('rollout/success_rate', float(np.mean(self._recent)), step)
        self.writer.add_scalar('rollout/episodes', len(rows), step)
        if steps:
            self.writer.add_scalar('rollout/intervention_rate', interventions / steps, step)

    def close(self) -> None:
        """Flushes and closes the event file."""
        self.writer.close()
