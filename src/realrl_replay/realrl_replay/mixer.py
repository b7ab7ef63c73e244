"""Mixing several samplers by fixed ratios (e.g. online vs. demonstrations vs. interventions)."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .sampler import Sampler

SOURCE = 'source'


class MixedSampler:
    """Each batch takes ``ratios[name]`` of its rows from ``samplers[name]``.

    Sources can be different stores (a demonstration store) or one store filtered by
    ``SamplerConfig.where`` (e.g. ('intervention', (True,))). Returned fields are those common
    to all sources; 'source' holds each row's position in ``names``.
    """

    def __init__(self, samplers: Mapping[str, Sampler], ratios: Mapping[str, float],
                 batch_size: int = 256):
        if set(samplers) != set(ratios):
            raise ValueError(f'ratios must name exactly the samplers {sorted(samplers)}, got '
                             f'{sorted(ratios)}')
        if any(r < 0 for r in ratios.values()) or sum(ratios.values()) <= 0:
            raise ValueError(f'ratios must be >= 0 with a positive sum, got {dict(ratios)}')
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.names = tuple(samplers)
        self.samplers = dict(samplers)
        total = sum(ratios.values())
        self.ratios = np.array([ratios[n] / total for n in self.names])
        self.batch_size = batch_size

    def counts(self, n: int) -> np.ndarray:
        """Rows per source for a batch of n (largest remainder rounding)."""
        exact = self.ratios * n
        counts = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - counts))[:n - counts.sum()]:
            counts[i] += 1
        return counts

    def sample(self, batch_size: int | None = None) -> dict[str, np.ndarray]:
        n = batch_size or self.batch_size
        parts, sources = [], []
        for i, (name, k) in enumerate(zip(self.names, self.counts(n))):
            if k:
                parts.append(self.samplers[name].sample(int(k)))
                sources.append(np.full(k, i, np.int8))
        keys = set.intersection(*(set(p) for p in parts))
        batch = {key: np.concatenate([p[key] for p in parts]) for key in sorted(keys)}
        batch[SOURCE] = np.concatenate(sources)
        return batch

    def close(self) -> None:
        for sampler in self.samplers.values():
            sampler.close()
