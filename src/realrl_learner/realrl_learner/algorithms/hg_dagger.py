"""HG-DAgger ('hg_dagger'): learn from the actions a person took while taking over the robot
(Kelly et al., 2019), after behaviour cloning from demonstrations; no ROS imports.

The robot runs the policy; a person watches and takes over when it drifts, and hands back
when it is on track again. Every row a person drove is flagged ``intervention`` (imported
demonstrations are stored so too); the rows the robot drove carry no label and weigh 0. The
learner aggregates all labelled rows and trains on them by behaviour cloning. Interventions
are sampled at a set share of each batch (``TrainerConfig.intervention_ratio`` in the
learner's sampler mix; ``ExpertRows.sample`` for data held in memory), and the first
``pretrain_updates`` updates draw on demonstrations only (``pretraining``).

The intervention rate (steps a person drove / steps of an episode) is the method's own
measure of progress: it falls as the policy needs the person less. ``InterventionRate``
keeps it per episode and reports it as 'rollout/intervention_rate'.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from realrl_learner.algorithms.bc import BC, BCConfig
from realrl_learner.algorithms.common import check_batch


@dataclass(frozen=True)
class HGDAggerConfig(BCConfig):
    """Behaviour cloning's hyperparameters plus the pre-training length and the window of
    the intervention rate."""

    type: str = 'hg_dagger'
    """Registered algorithm name ('realrl.algorithms')."""
    pretrain_updates: int = 500
    """Updates on demonstrations only before the policy's own rows and interventions count
    (the learner samples demo stores only while ``pretraining``)."""
    rate_window: int = 20
    """Episodes the reported intervention rate averages over."""

    def __post_init__(self):
        super().__post_init__()
        if self.pretrain_updates < 0:
            raise ValueError(f'pretrain_updates must be >= 0, got {self.pretrain_updates}')
        if self.rate_window < 1:
            raise ValueError(f'rate_window must be >= 1, got {self.rate_window}')


def intervention_rate(steps: int, interventions: int) -> float:
    """Share of an episode's steps a person drove (EpisodeResult.interventions / steps)."""
    if interventions < 0 or interventions > steps:
        raise ValueError(f'interventions ({interventions}) must be within 0..steps ({steps})')
    return interventions / steps if steps else 0.0


class InterventionRate:
    """Per-episode intervention rates and their mean over the last `window` episodes."""

    def __init__(self, window: int = 20):
        self.rates: list[float] = []
        self._recent: deque[float] = deque(maxlen=window)

    def record(self, steps: int, interventions: int) -> float:
        """Add one finished episode; returns its rate."""
        rate = intervention_rate(steps, interventions)
        self.rates.append(rate)
        self._recent.append(rate)
        return rate

    def metrics(self) -> dict[str, float]:
        """'rollout/intervention_rate' (window mean) and the last episode's rate."""
        if not self.rates:
            return {}
        return {'rollout/intervention_rate': float(np.mean(self._recent)),
                'rollout/intervention_rate_last_episode': self.rates[-1],
                'rollout/episodes': float(len(self.rates))}


class HGDAgger(BC):
    """Behaviour cloning on the rows a person drove; intervention rate as a metric."""

    config_class = HGDAggerConfig

    def __init__(self, obs_spec, act_dim: int, cfg: HGDAggerConfig = HGDAggerConfig(),
                 seed: int = 0):
        super().__init__(obs_spec, act_dim, cfg, seed)
        self.rate = InterventionRate(cfg.rate_window)

    @property
    def batch_keys(self) -> tuple[str, ...]:
        """BC's fields plus 'intervention'."""
        return super().batch_keys + ('intervention',)

    @property
    def pretraining(self) -> bool:
        """True while the first pretrain_updates (demonstrations only) are under way."""
        return self.updates < self.cfg.pretrain_updates

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One step of behaviour cloning on the batch's intervention rows; the robot's own
        rows weigh nothing (a batch without any trains nothing)."""
        n = check_batch(batch, self.batch_keys)
        weight = torch.as_tensor(batch['intervention'], dtype=torch.float32).reshape(n)
        share = float(weight.mean())
        out = {'train/intervention_share': share, **self.rate.metrics()}
        if share == 0.0:
            return {**out, 'train/updates': float(self.updates)}
        loss = self.learn(batch, weight)
        return {**out, 'train/bc_loss': float(loss.detach()), 'train/updates': float(self.updates)}

    def record_episode(self, steps: int, interventions: int) -> float:
        """A finished episode (EpisodeResult.steps, .interventions); returns its rate."""
        return self.rate.record(steps, interventions)

    def state_dict(self) -> dict:
        """BC's state plus the intervention rates so far."""
        return {**super().state_dict(), 'intervention_rates': list(self.rate.rates)}

    def load_state_dict(self, state: dict) -> None:
        """Restore state_dict output."""
        super().load_state_dict(state)
        for rate in state.get('intervention_rates', []):
            self.rate.rates.append(float(rate))
            self.rate._recent.append(float(rate))


class ExpertRows:
    """Labelled rows held in memory (demonstrations, and interventions as they come),
    sampled with interventions at a set share: what the learner's MixedSampler does with
    the replay store, for benches and tests that run without one."""

    def __init__(self, seed: int = 0):
        self._parts: dict[str, list[dict[str, np.ndarray]]] = {'demos': [], 'interventions': []}
        self._rng = np.random.default_rng(seed)

    def add(self, source: str, rows: dict[str, np.ndarray]) -> None:
        """Rows (equal-length arrays per field) from 'demos' or 'interventions'."""
        if source not in self._parts:
            raise ValueError(f"source must be 'demos' or 'interventions', got {source!r}")
        self._parts[source].append({k: np.asarray(v) for k, v in rows.items()})

    def count(self, source: str) -> int:
        """Rows held from source."""
        return sum(len(next(iter(r.values()))) for r in self._parts[source])

    def _take(self, source: str, n: int) -> dict[str, np.ndarray]:
        rows = {k: np.concatenate([r[k] for r in self._parts[source]])
                for k in self._parts[source][0]}
        idx = self._rng.integers(0, len(next(iter(rows.values()))), n)
        return {k: v[idx] for k, v in rows.items()}

    def sample(self, batch_size: int, intervention_ratio: float,
               demos_only: bool = False) -> dict[str, torch.Tensor]:
        """A batch: intervention_ratio of it interventions, the rest demonstrations (a source
        with no rows gives its share to the other); every row's 'intervention' is 1."""
        have_i, have_d = self.count('interventions') > 0, self.count('demos') > 0
        if not (have_i or have_d):
            raise ValueError('no rows yet: add demonstrations or interventions first')
        n_i = 0 if demos_only or not have_i else round(batch_size * intervention_ratio)
        n_i = batch_size if not have_d else n_i
        parts = [self._take(s, n) for s, n in (('interventions', n_i),
                                               ('demos', batch_size - n_i)) if n > 0]
        batch = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        batch['intervention'] = np.ones(batch_size, np.float32)
        return {k: torch.as_tensor(v) for k, v in batch.items()}
