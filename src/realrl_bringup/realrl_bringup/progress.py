"""What a run has achieved so far, from the messages the monitor sees (no ROS)."""
from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    """The JSON lines of a run's log (metrics, probes); a line cut short is skipped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
    return rows


@dataclass
class Progress:
    """Counters and the recent success window of a run, fed by the monitor node."""

    window: int = 20
    started: float = field(default_factory=time.monotonic)
    episodes: int = 0
    successes: int = 0
    recent: deque = field(default_factory=deque)
    steps: dict = field(default_factory=dict)          # robot -> steps
    stored: int = 0
    learner_updates: int = 0
    policy_version: int = 0
    learner_version: int = 0
    rejected: dict = field(default_factory=dict)       # robot -> rejected actions
    lost: dict = field(default_factory=dict)           # robot -> actions lost on the way
    waiting: dict = field(default_factory=dict)        # robot -> what its loop waits for
    _rate_mark: tuple = (0.0, 0)
    steps_per_s: float = 0.0
    time_offset: float = 0.0
    """Run time before this start (a resumed run continues its time axis)."""

    def __post_init__(self):
        self.recent = deque(maxlen=self.window)

    def elapsed(self) -> float:
        """Seconds of run time, counting earlier starts of a resumed run."""
        return self.time_offset + time.monotonic() - self.started

    def on_episode(self, success: bool) -> None:
        self.episodes += 1
        self.successes += int(success)
        self.recent.append(bool(success))

    @property
    def success_rate(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else 0.0

    def reached(self, target: float) -> bool:
        return len(self.recent) == self.window and self.success_rate >= target

    def update_rate(self, now: float) -> None:
        total = sum(self.steps.values())
        t0, s0 = self._rate_mark
        if now - t0 >= 1.0:
            if t0 > 0:
                self.steps_per_s = (total - s0) / (now - t0)
            self._rate_mark = (now, total)

    def line(self, nodes_up: list[str], nodes_down: list[str]) -> str:
        elapsed = self.elapsed()
        total = len(nodes_up) + len(nodes_down)
        nodes = f'nodes {len(nodes_up)}/{total} up' + (
            f' (down: {", ".join(nodes_down)})' if nodes_down else '')
        return (f'[{elapsed:6.1f}s] episodes {self.episodes:4d} | '
                f'success(last {len(self.recent)}) '
                f'{self.success_rate:4.2f} | stored {self.stored:6d} | updates '
                f'{self.learner_updates:6d} | policy v{self.policy_version} | '
                f'{self.steps_per_s:5.1f} steps/s | {nodes}{self.waits()}')

    def waits(self) -> str:
        """' | waiting for reward labels: arm0, arm1' (and for actions, or for new weights in
        sync mode), or ''."""
        parts = []
        for what, label in (('reward_label', 'reward labels'), ('action', 'actions'),
                            ('weights', 'new weights')):
            robots = sorted(r for r, w in self.waiting.items() if w == what)
            if robots:
                parts.append(f' | waiting for {label}: {", ".join(robots)}')
        return ''.join(parts)

    def summary(self) -> dict:
        return {'episodes': self.episodes, 'successes': self.successes,
                'final_success_rate': self.success_rate, 'stored': self.stored,
                'learner_updates': self.learner_updates, 'policy_version': self.policy_version,
                'steps': sum(self.steps.values()), 'rejected_actions': sum(self.rejected.values()),
                'lost_actions': sum(self.lost.values()),
                'elapsed_s': time.monotonic() - self.started, 'run_time_s': self.elapsed()}


class EpisodeLog:
    """Appends one JSON line per finished episode to the run's metrics log."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: dict) -> None:
        with open(self.path, 'a') as f:
            f.write(json.dumps(record) + '\n')

    def read(self) -> list[dict]:
        return read_jsonl(self.path)

    def last_time(self) -> float:
        rows = self.read()
        return float(rows[-1].get('time_s', 0.0)) if rows else 0.0
