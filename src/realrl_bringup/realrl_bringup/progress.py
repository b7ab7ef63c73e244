"""What a run has achieved so far, from the messages the monitor sees (no ROS)."""
from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Progress:
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
    _rate_mark: tuple = (0.0, 0)
    steps_per_s: float = 0.0

    def __post_init__(self):
        self.recent = deque(maxlen=self.window)

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

    def line(self, nodes_up: int, nodes_total: int) -> str:
        elapsed = time.monotonic() - self.started
        return (f'[{elapsed:6.1f}s] episodes {self.episodes:4d} | success(last {len(self.recent)}) '
                f'{self.success_rate:4.2f} | stored {self.stored:6d} | updates '
                f'{self.learner_updates:6d} | policy v{self.policy_version} | '
                f'{self.steps_per_s:5.1f} steps/s | nodes {nodes_up}/{nodes_total} up')

    def summary(self) -> dict:
        return {'episodes': self.episodes, 'successes': self.successes,
                'final_success_rate': self.success_rate, 'stored': self.stored,
                'learner_updates': self.learner_updates, 'policy_version': self.policy_version,
                'steps': sum(self.steps.values()), 'rejected_actions': sum(self.rejected.values()),
                'elapsed_s': time.monotonic() - self.started}


class EpisodeLog:
    """Appends one JSON line per finished episode to the run's metrics log."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: dict) -> None:
        with open(self.path, 'a') as f:
            f.write(json.dumps(record) + '\n')

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
