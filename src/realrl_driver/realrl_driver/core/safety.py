"""The driver's action guard: every command is checked here before it can reach a robot.

An action is applied only if it has the right length, is finite, lies inside the
robot's bounds, and answers the observation the driver is waiting on (same episode and
step). Everything else is rejected and counted by reason, so a misbehaving policy shows up
in the counters instead of in the robot's motion. Actions that never reach the guard are
counted too: those addressed to another robot (``refuse``), and those lost on the way
(``LossCounter``, from gaps in each publisher's sequence numbers). The node logs and
publishes the counts; this module only counts.

The boundary: a value exactly at a bound is inside. A value at most ``tolerance`` beyond a
bound (rounding, e.g. a float64 limit sent as float32) is accepted and set onto the bound by
``bounded`` before it is applied, and counted in ``clipped``; further out it is rejected as
``out_of_range``. So what reaches the robot is always inside its bounds.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

REASONS = ('wrong_length', 'non_finite', 'out_of_range', 'stale', 'estop', 'wrong_robot_id')


@dataclass(frozen=True)
class Verdict:
    """Whether an action may be applied, and the reason if not."""

    ok: bool
    reason: str = ''


class ActionGuard:
    """Checks actions against fixed bounds; counts rejections by reason."""

    def __init__(self, low, high, tolerance: float = 1e-6):
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        if self.low.shape != self.high.shape or self.low.ndim != 1:
            raise ValueError(f'action bounds must be two vectors of one length, got '
                             f'{self.low.shape} and {self.high.shape}')
        if not np.all(self.low <= self.high):
            raise ValueError('action_low must be <= action_high in every dimension')
        self.tolerance = tolerance
        self.rejected: Counter = Counter()
        self.accepted = 0
        self.clipped = 0
        """Accepted actions that had a value in the tolerance band, set onto the bound."""
        self.estopped = False
        self.bad_chunk_rows = 0
        """Rows of refused chunks that were non-finite or out of bounds."""

    @property
    def dim(self) -> int:
        return self.low.shape[0]

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def check(self, action, episode_id: int, step: int, want_episode: int, want_step: int
              ) -> Verdict:
        verdict = self._judge(action, episode_id, step, want_episode, want_step)
        if verdict.ok:
            self.accepted += 1
        else:
            self.rejected[verdict.reason] += 1
        return verdict

    def refuse(self, reason: str) -> None:
        """Count an action refused before it could be judged (e.g. 'wrong_robot_id': an
        empty or foreign robot_id on this robot's topic)."""
        if reason not in REASONS:
            raise ValueError(f'unknown rejection reason {reason!r}; known: {list(REASONS)}')
        self.rejected[reason] += 1

    @property
    def received(self) -> int:
        """Every action offered to the guard: accepted or counted by reason."""
        return self.accepted + self.rejected_total

    def _judge(self, action, episode_id, step, want_episode, want_step) -> Verdict:
        if self.estopped:
            return Verdict(False, 'estop')
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            return Verdict(False, 'wrong_length')
        if a.ndim != 1 or a.shape[0] != self.dim:
            return Verdict(False, 'wrong_length')
        if not np.all(np.isfinite(a)):
            return Verdict(False, 'non_finite')
        if np.any(a < self.low - self.tolerance) or np.any(a > self.high + self.tolerance):
            return Verdict(False, 'out_of_range')
        if episode_id != want_episode or step != want_step:
            return Verdict(False, 'stale')
        return Verdict(True)

    def check_chunk(self, actions, horizon: int, episode_id: int, step: int,
                    want_episode: int, want_step: int) -> Verdict:
        """Judge a chunk: rows for steps step .. step+horizon-1 of episode_id, applied one a
        tick from the step the loop waits on. Every row must pass what a single action must
        (length, finite, bounds); one bad row refuses the whole chunk, since the plan it
        belongs to is suspect, and the bad rows are counted in ``bad_chunk_rows``. It is
        stale unless it is for the current episode and covers the step the loop waits on
        (a chunk for a later step is not from this episode's observations). Counted like a
        single action: one accepted or one rejection by reason."""
        verdict = self._judge_chunk(actions, horizon, episode_id, step, want_episode, want_step)
        if verdict.ok:
            self.accepted += 1
        else:
            self.rejected[verdict.reason] += 1
        return verdict

    def _judge_chunk(self, actions, horizon, episode_id, step, want_episode, want_step
                     ) -> Verdict:
        if self.estopped:
            return Verdict(False, 'estop')
        try:
            a = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError):
            return Verdict(False, 'wrong_length')
        if horizon < 1 or a.size != horizon * self.dim:
            return Verdict(False, 'wrong_length')
        rows = a.reshape(horizon, self.dim)
        bad = ~np.all(np.isfinite(rows), axis=1)
        if bad.any():
            self.bad_chunk_rows += int(bad.sum())
            return Verdict(False, 'non_finite')
        out = np.any((rows < self.low - self.tolerance) | (rows > self.high + self.tolerance),
                     axis=1)
        if out.any():
            self.bad_chunk_rows += int(out.sum())
            return Verdict(False, 'out_of_range')
        if episode_id != want_episode or not step <= want_step < step + horizon:
            return Verdict(False, 'stale')
        return Verdict(True)

    def bounded(self, action) -> np.ndarray:
        """An accepted action as float32, every value inside [low, high]: values in the
        tolerance band beyond a bound are set onto it (counted in ``clipped``)."""
        a = np.asarray(action, dtype=np.float64)
        inside = np.clip(a, self.low, self.high)
        if np.any(inside != a):
            self.clipped += 1
        out = inside.astype(np.float32)
        # a bound that float32 cannot hold exactly may round outward: step back inside
        out = np.where(out > self.high, np.nextafter(out, np.float32(-np.inf)), out)
        out = np.where(out < self.low, np.nextafter(out, np.float32(np.inf)), out)
        return out.astype(np.float32)


def checked_action(action, action_dim: int) -> np.ndarray:
    """A robot's own last check of an action (behind the guard): ``action_dim`` finite values
    as float64, else ValueError. Robots then clip or limit it themselves."""
    a = np.asarray(action, dtype=np.float64).reshape(-1)
    if a.shape != (action_dim,):
        raise ValueError(f'action must have {action_dim} values, got shape {np.shape(action)}')
    if not np.all(np.isfinite(a)):
        raise ValueError(f'action must be finite, got {a.tolist()}')
    return a


class LossCounter:
    """Messages lost before they were taken: each publisher numbers what it sends, so a
    gap between two numbers taken from one publisher is that many messages lost (a full
    subscription queue drops the oldest; a best-effort network drops any). The middleware's
    own count (its message-lost event, where it has one) may report the same losses; the
    larger of the two is the count, so none is counted twice."""

    def __init__(self):
        self._last: dict = {}  # publisher -> last sequence number taken
        self.gaps = 0
        self.reported = 0

    def taken(self, publisher, seq: int | None) -> int:
        """A message numbered ``seq`` was taken from ``publisher``; returns how many of
        its messages were skipped since the previous one (0 for a publisher's first)."""
        if seq is None or publisher is None:
            return 0  # the middleware does not number messages: nothing to compare
        last = self._last.get(publisher)
        self._last[publisher] = seq
        if last is None or seq <= last:
            return 0  # first seen, or restarted numbering
        self.gaps += seq - last - 1
        return seq - last - 1

    def middleware_lost(self, count: int) -> None:
        """The middleware's message-lost event: ``count`` more messages lost."""
        self.reported += int(count)

    @property
    def lost(self) -> int:
        return max(self.gaps, self.reported)
