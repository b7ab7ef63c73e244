"""Sampling from several sources: stores of earlier runs, demonstrations, filtered views.

``MixedSampler`` draws each batch from several Samplers, by fixed ratios or in proportion to
their rows (uniform over the union). ``open_sources`` opens stores read-only (a live store of
the running node among them, or not) and checks that they can be mixed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np

from .reader import ReplayReader
from .sampler import Sampler
from .sampler_config import SamplerConfig

SOURCE = 'source'
COMPATIBLE_KEYS = ('state_dim', 'action_dim', 'action_low', 'action_high', 'image_size')
"""Robot description entries that must agree between mixed stores (when both have them and
neither has the replay node's shared 'space' of several robot kinds, which must then be
equal)."""


class MixedSampler:
    """Each batch takes ``ratios[name]`` of its rows from ``samplers[name]``.

    Sources can be different stores (earlier runs, demonstrations) or one store filtered by
    ``SamplerConfig.where`` (e.g. ('intervention', (True,))); a source with nothing to draw
    from yet gives its share to the others. ``ratios=None`` draws in
    proportion to each sampler's rows (its window, as of its last refresh): uniform over the
    union of the sources. Returned fields are those common to all sources; 'source' holds
    each row's position in ``names``, 'index' its row in that source.
    """

    def __init__(self, samplers: Mapping[str, Sampler], ratios: Mapping[str, float] | None = None,
                 batch_size: int = 256):
        if not samplers:
            raise ValueError('MixedSampler needs at least one sampler')
        if ratios is not None:
            if set(samplers) != set(ratios):
                raise ValueError(f'ratios must name exactly the samplers {sorted(samplers)}, got '
                                 f'{sorted(ratios)}')
            if any(r < 0 for r in ratios.values()) or sum(ratios.values()) <= 0:
                raise ValueError(f'ratios must be >= 0 with a positive sum, got {dict(ratios)}')
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.names = tuple(samplers)
        self.samplers = dict(samplers)
        self.proportional = ratios is None
        self._fixed = None if ratios is None else np.array(
            [ratios[n] / sum(ratios.values()) for n in self.names])
        self.batch_size = batch_size

    @property
    def ratios(self) -> np.ndarray:
        """Share of each source in a batch, in the order of ``names``."""
        if self._fixed is not None:
            return self._fixed
        rows = np.array([max(0, self.samplers[n].rows) for n in self.names], float)
        if rows.sum() <= 0:
            return np.full(len(self.names), 1.0 / len(self.names))
        return rows / rows.sum()

    @property
    def count(self) -> int:
        """Rows of all sources together (their windows)."""
        return sum(max(0, s.rows) for s in self.samplers.values())

    @property
    def rows(self) -> int:
        """Same as count (so that a MixedSampler can be one source of another)."""
        return self.count

    def ready(self) -> bool:
        """Whether some source has rows to draw from now."""
        return any(s.ready() for s in self.samplers.values())

    def refresh(self) -> int:
        for sampler in self.samplers.values():
            sampler.refresh()
        return self.count

    def counts(self, n: int) -> np.ndarray:
        """Rows per source for a batch of n (largest remainder rounding). A source with
        nothing to draw from yet (an empty store, no row matching its ``where``) gives its
        share to the others in proportion to theirs."""
        share = self.ratios * np.array([self.samplers[k].ready() for k in self.names])
        if share.sum() <= 0:
            share = self.ratios  # nothing ready anywhere: wait for rows as a Sampler does
        exact = share / share.sum() * n
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

    def __enter__(self) -> MixedSampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


Source = Union[str, os.PathLike, ReplayReader]
"""A store to sample: its folder, or a reader already open on it."""


def open_sources(stores: Mapping[str, Source] | Sequence[Source],
                 config: SamplerConfig | None = None,
                 ratios: Mapping[str, float] | None = None) -> MixedSampler:
    """A MixedSampler over several stores, each opened read-only (never written, no lock).

    ``stores``: name -> path or ReplayReader, or those alone (named by their folder); a
    reader given is sampled as it is, not opened again. ``config`` is shared; its
    ``cache_bytes`` is split evenly between the stores and ``fields`` (default: the fields
    every store has) must have one shape and dtype in all of them. Stores whose metadata
    describe robots must agree on COMPATIBLE_KEYS. StoreError names a folder that is not a
    valid store; ValueError names what differs.
    """
    config = config or SamplerConfig()
    if not isinstance(stores, Mapping):
        named: dict[str, str | os.PathLike] = {}
        for source in stores:
            path = source.path if isinstance(source, ReplayReader) else source
            name, i = Path(path).name or str(path), 1
            while name in named:
                i += 1
                name = f'{Path(path).name}-{i}'
            named[name] = source
        stores = named
    if not stores:
        raise ValueError('open_sources needs at least one store')
    readers = {name: source if isinstance(source, ReplayReader) else ReplayReader(source)
               for name, source in stores.items()}
    fields = config.fields or common_fields(readers.values())
    check_compatible(readers, fields)
    share = max(1, config.cache_bytes // len(readers))
    per_store = SamplerConfig(**{**vars(config), 'fields': tuple(fields), 'cache_bytes': share})
    samplers: dict[str, Sampler] = {}
    try:
        for i, (name, reader) in enumerate(readers.items()):
            seed = None if config.seed is None else config.seed + i
            samplers[name] = Sampler(reader, SamplerConfig(**{**vars(per_store), 'seed': seed}))
    except BaseException:
        for sampler in samplers.values():
            sampler.close()
        raise
    return MixedSampler(samplers, ratios, config.batch_size)


def common_fields(readers) -> tuple[str, ...]:
    """Public fields present in every store, in the first store's order."""
    readers = list(readers)
    names = [f.name for f in readers[0].schema.public]
    return tuple(n for n in names if all(n in r.schema.by_name for r in readers[1:]))


def check_compatible(readers: Mapping[str, ReplayReader], fields) -> None:
    """ValueError naming the store and what differs, if the stores cannot be mixed."""
    items = list(readers.items())
    ref_name, ref = items[0]
    for name, reader in items:
        for field in fields:
            spec = reader.schema.by_name.get(field)
            if spec is None:
                raise ValueError(f'store {name!r} ({reader.path}) has no field {field!r}')
            want = ref.schema.by_name[field]
            if (spec.shape, spec.dtype) != (want.shape, want.dtype):
                raise ValueError(f'field {field!r} is {spec.shape} {spec.dtype} in store '
                                 f'{name!r} but {want.shape} {want.dtype} in {ref_name!r}')
    ref_robot = _first_robot(ref.metadata)
    for name, reader in items[1:]:
        space, ref_space = reader.metadata.get('space'), ref.metadata.get('space')
        if space is not None and ref_space is not None:
            if space != ref_space:  # rows are padded into the space: it must be the same
                raise ValueError(f'stores {name!r} and {ref_name!r} have different shared '
                                 f'spaces (robot kinds): {space} vs {ref_space}')
            continue
        robot = _first_robot(reader.metadata)
        if ref_robot is None or robot is None:
            continue
        for key in COMPATIBLE_KEYS:
            if key in ref_robot and key in robot and ref_robot[key] != robot[key]:
                raise ValueError(f'robots differ in {key!r}: {robot[key]} in store {name!r}, '
                                 f'{ref_robot[key]} in {ref_name!r}')


def _first_robot(metadata: dict) -> dict | None:
    robots = metadata.get('robots') if isinstance(metadata, dict) else None
    if isinstance(robots, dict) and robots:
        return next(iter(robots.values()))
    return None
