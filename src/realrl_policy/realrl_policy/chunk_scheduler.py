"""When to compute a robot's next action chunk, and how to join it to the one running
(no ROS, no torch, no clock: everything is counted in control steps).

A chunk policy answers the observation of step s with rows for steps s, s+1, ..., and the
driver applies one row a tick. If inference takes longer than a control period, computing
the next chunk only when the current one has run out (``overlap=False``, blocking) makes the
driver hold for the whole inference at every chunk boundary. With ``overlap=True`` the next
inference starts from the newest observation while the current chunk still has rows left
(real-time chunking, as RLinf and LeRobot's asynchronous inference do), so the new chunk
arrives before the old one runs out and the control clock never waits on the model:

- **Start.** A new inference starts when at most ``start_left`` rows of the current chunk
  are left for the newest observed step: ``max(ceil(start_fraction * H), latency + 1)``,
  where ``latency`` is the largest number of ticks an inference took recently, counted in
  observations (the driver publishes one every tick, a repeated one when it holds). So a
  model that is slower than planned starts earlier instead of stalling. One inference per
  robot is in flight at a time.
- **Align.** The new chunk answers the observation of step s, but arrives when the robot
  is at step t > s: its rows for steps s..t-1 were overtaken by the old chunk's rows, which
  the driver already applied; the driver skips them (it applies the row of the step it is
  at). The chunk is sent whole, starting at s.
- **Blend.** Where the new chunk and the old one both cover steps not yet executed
  (t .. end of the old chunk), the rows are blended, from the old chunk's towards the new
  one's with a linear ramp over the overlap, so the command does not jump where one chunk
  hands over to the other. A convex mix of rows inside the bounds stays inside them.

With one inference in flight at a time, a chunk supplies its rows from the moment it
arrives, so the clock never waits once ``H >= 2 * latency`` (in ticks); a model slower than
half a chunk needs longer chunks. A chunk that finishes after its episode ended is dropped.
``test_chunk_scheduler.py`` checks in ticks that a model three periods slow never leaves a
step without a row.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Plan:
    """A chunk as sent to the driver: rows for steps start, start+1, ... of episode_id."""

    episode_id: int
    start: int
    rows: np.ndarray
    version: int = 0

    @property
    def end(self) -> int:
        """The first step after the chunk."""
        return self.start + len(self.rows)


class ChunkScheduler:
    """One robot's chunk schedule: ``observed`` says when to start an inference,
    ``finished`` turns its result into the chunk to send."""

    def __init__(self, overlap: bool = True, start_fraction: float = 0.5,
                 latency_window: int = 8):
        if not 0.0 <= start_fraction <= 1.0:
            raise ValueError(f'start_fraction must be in [0, 1], got {start_fraction}')
        self.overlap = overlap
        self.start_fraction = start_fraction
        self.plan: Plan | None = None
        self.ticks = 0
        """Observations seen: one per control tick of the driver."""
        self._started_at = 0
        self.in_flight: tuple[int, int] | None = None
        """(episode_id, step) of the observation being answered, while an inference runs."""
        self.latest: tuple[int, int] | None = None
        """The newest observation seen: (episode_id, step)."""
        self._latencies: deque[int] = deque(maxlen=latency_window)
        self.dropped = 0
        """Finished chunks dropped because their episode had ended meanwhile."""

    @property
    def latency(self) -> int:
        """The largest inference latency, in ticks, of the recent inferences (0: none yet)."""
        return max(self._latencies, default=0)

    def start_left(self, horizon: int) -> int:
        """Start the next inference when at most this many rows are left."""
        if not self.overlap:
            return 0
        return min(horizon, max(math.ceil(self.start_fraction * horizon), self.latency + 1))

    def observed(self, episode_id: int, step: int) -> bool:
        """The observation (episode_id, step) arrived; True: start an inference from it now
        (the caller then calls ``finished`` with its result)."""
        self.ticks += 1
        if self.latest is None or (episode_id, step) > self.latest:
            self.latest = (episode_id, step)
        if self.in_flight is not None or (episode_id, step) != self.latest:
            return False
        plan = self.plan
        if plan is None or plan.episode_id != episode_id or step < plan.start:
            start = True  # nothing planned for this episode
        else:
            start = plan.end - step <= self.start_left(len(plan.rows))
        if start:
            self.in_flight, self._started_at = (episode_id, step), self.ticks
        return start

    def finished(self, rows: np.ndarray, version: int = 0, blend: bool = True) -> Plan | None:
        """The inference started by ``observed`` returned ``rows`` (horizon x action_dim,
        robot units); returns the chunk to send (aligned and, with ``blend``, blended), or
        None if its episode has ended meanwhile. ``blend=False`` for a single action held
        over several rows (the policy node's ``hold_rows``): the newer answer replaces it."""
        if self.in_flight is None:
            raise RuntimeError('finished() without an inference in flight')
        episode_id, step = self.in_flight
        self.in_flight = None
        rows = np.asarray(rows, np.float32).reshape(len(rows), -1)
        latest_ep, latest_step = self.latest
        self._latencies.append(self.ticks - self._started_at)
        if latest_ep != episode_id:
            self.dropped += 1
            return None
        new = Plan(episode_id, step, rows.copy(), int(version))
        old = self.plan
        if blend and old is not None and old.episode_id == episode_id:
            _blend(old, new, latest_step)
        self.plan = new
        return new

    def cancel(self) -> None:
        """The inference in flight failed: nothing is coming from it."""
        self.in_flight = None


def _blend(old: Plan, new: Plan, now: int) -> None:
    """Blend new's rows for steps now .. old.end-1 (covered by both, not yet executed)
    from old's towards new's, in place: weight of new = k / n for the k-th of n steps."""
    first, last = max(now, new.start), min(old.end, new.end)
    n = last - first
    if n <= 0 or old.rows.shape[1] != new.rows.shape[1]:
        return
    w = (np.arange(1, n + 1, dtype=np.float32) / (n + 1))[:, None]
    o = old.rows[first - old.start:last - old.start]
    s = slice(first - new.start, last - new.start)
    new.rows[s] = (1.0 - w) * o + w * new.rows[s]
