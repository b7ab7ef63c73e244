"""Cache-aware sampling of a store for a learner (uniform or prioritized, windowed, filtered).

The window (all rows, or the newest ``window``) is split in two strata: the newest blocks, kept
cached, and the older blocks, of which a random subset is cached and rotated continuously by a
background loader. Each batch draws from a stratum in proportion to that stratum's whole mass
in the window, and inside it from the cached rows, so every row of the window has the same
chance in expectation over the rotation (uniform), or a chance proportional to
priority**alpha estimated from the cached blocks (prioritized). 'weight' holds importance
weights (1/(N q_i))**beta / max against the uniform, from the true sampling probability q_i.
"""
from __future__ import annotations

import os
import time
from collections import deque

import numpy as np

from .action_chunks import ACTION_CHUNK, following_actions
from .cache import BlockCache
from .errors import RowsEvictedError
from .frame_stack import preceding_rows, stack_frames
from .reader import EPISODE, ReplayReader
from .sampler_config import SamplerConfig
from .schema import ROBOT_ID

INDEX = 'index'
WEIGHT = 'weight'


class Sampler:
    """Samples batches (dict of numpy arrays, plus 'index' and 'weight') from one store.

    Not thread-safe: call it from the learner's thread; loading runs in its own thread.
    """

    def __init__(self, path: str | os.PathLike | ReplayReader,
                 config: SamplerConfig | None = None):
        self.config = config = config or SamplerConfig()
        self.reader = path if isinstance(path, ReplayReader) else ReplayReader(path)
        schema = self.reader.schema
        names = config.fields or tuple(f.name for f in schema.public)
        unknown = [n for n in names if n not in schema.by_name]
        if unknown:
            raise ValueError(f'fields {unknown} are not in the store; known: '
                             f'{sorted(f.name for f in schema.public)}')
        self._returned = tuple(names)
        if config.action_chunk and not {ROBOT_ID, EPISODE, 'action'} <= set(schema.by_name):
            raise ValueError(f'action_chunk needs the store fields {ROBOT_ID!r}, {EPISODE!r} and '
                             f"'action'; {self.reader.path} lacks some: set action_chunk to 0")
        if config.frame_stack > 1 and not {ROBOT_ID, EPISODE} <= set(schema.by_name):
            raise ValueError(f'frame_stack needs the store fields {ROBOT_ID!r} and {EPISODE!r}; '
                             f'{self.reader.path} lacks some: set frame_stack to 1')
        if config.where is not None:
            spec = schema.by_name.get(config.where[0])
            if spec is None or spec.shape != ():
                raise ValueError(f'where field {config.where[0]!r} must be a scalar field of the '
                                 f'store; known: {sorted(schema.by_name)}')
            if spec.name not in names:
                names = (*names, spec.name)
        for name in (ROBOT_ID, EPISODE):  # to skip rows of evicted episodes
            if name in schema.by_name and name not in names:
                names = (*names, name)
        specs = sorted((schema.by_name[n] for n in names), key=lambda f: f.link is not None)
        block = min(s.chunk_rows for s in specs)
        slot_bytes = block * sum(s.row_bytes for s in specs)
        slots = config.cache_bytes // slot_bytes
        if slots < config.prefetch_blocks + 2:
            raise ValueError(
                f'cache_bytes {config.cache_bytes} holds {slots} blocks of {slot_bytes} bytes; '
                f'raise cache_bytes to at least {(config.prefetch_blocks + 2) * slot_bytes}')
        self.block_rows = block
        self._cache = BlockCache(self.reader, specs, block, slots)
        self._rng = np.random.default_rng(config.seed)
        self._free = deque(range(slots))
        self._slot_block = np.full(slots, -1, np.int64)
        self._slot_valid = np.zeros(slots, np.int64)
        self._slot_order = np.zeros(slots, np.int64)       # install counter, for FIFO eviction
        self._weights = np.zeros((slots, block))             # sampling weight of each cached row
        self._in_window = np.zeros((slots, block), bool)     # cached row is valid and in window
        self._resident: dict[int, int] = {}                  # block -> slot
        self._inflight: dict[int, int] = {}                  # block -> slot
        self._installs = 0
        self._swap_credit = 0.0
        self._n_recent_blocks = max(2, int(config.recent_fraction * slots))
        self._marker = self.reader.snapshot()
        self._last_refresh = -1.0
        self._priorities = np.zeros(0, np.float32)
        self._max_priority = 1.0
        self.stats = {'loads': 0, 'evictions': 0, 'batches': 0}

    # ----------------------------------------------------------------------------- public
    @property
    def count(self) -> int:
        """Committed rows known to the sampler."""
        return self._marker.count

    @property
    def cached_rows(self) -> int:
        return int(self._slot_valid[self._slot_block >= 0].sum())

    @property
    def robot_names(self) -> tuple[str, ...]:
        return self._marker.robots

    @property
    def first(self) -> int:
        """First row not evicted by the store's retention."""
        return self._marker.first

    @property
    def rows(self) -> int:
        """Rows the sampler draws from: the window, less rows below the watermark (rows of
        evicted episodes above it are not subtracted)."""
        lo, hi = self._window()
        return hi - lo

    def ready(self) -> bool:
        """Whether sample() has rows to draw from without waiting for a store to grow: the
        window holds rows, and with ``where``, a cached one matches (loads that finished are
        installed first, so matching rows show up as the cache turns over)."""
        if time.monotonic() - self._last_refresh >= self.config.refresh_interval_s:
            self.refresh()
        if self.rows <= 0:
            return False
        if self.config.where is None:
            return True
        self._install(self._cache.finished())
        self._schedule()
        return bool(self._weights.sum() > 0)

    def refresh(self) -> int:
        """Look for newly committed rows now; return the count."""
        self.reader.refresh()
        self._marker = self.reader.snapshot()
        self._last_refresh = time.monotonic()
        count = self._marker.count
        if self.config.prioritized and len(self._priorities) < count:
            grown = np.full(max(count, 2 * len(self._priorities)), self._max_priority,
                            np.float32)
            grown[:len(self._priorities)] = self._priorities
            self._priorities = grown
        lo = self._window()[0]
        for block, slot in list(self._resident.items()):
            if (block + 1) * self.block_rows <= lo:
                self._evict(slot)
        self._set_weights(np.flatnonzero(self._slot_block >= 0))
        return count

    def sample(self, batch_size: int | None = None) -> dict[str, np.ndarray]:
        """A batch of committed transitions; blocks until the first rows are cached."""
        n = self.config.batch_size if batch_size is None else batch_size
        if time.monotonic() - self._last_refresh >= self.config.refresh_interval_s:
            self.refresh()
        self._install(self._cache.finished())
        self._schedule()
        deadline = time.monotonic() + self.config.load_timeout_s
        while self._weights.sum() <= 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f'{self.reader.path}: no sampleable rows cached within '
                                   f'{self.config.load_timeout_s} s (count {self.count}, '
                                   f'where {self.config.where})')
            if not self._inflight:
                self.refresh()
                self._schedule()
                if not self._inflight:
                    time.sleep(0.02)
                    continue
            self._install(self._cache.finished(wait_s=0.05))
        slots, rows, q = self._draw(n)
        batch = {name: self._cache.arena[name][slots, rows] for name in self._returned}
        batch[INDEX] = self._slot_block[slots] * self.block_rows + rows
        if self.config.action_chunk:
            batch[ACTION_CHUNK] = following_actions(self.reader, batch[INDEX],
                                                    self.config.action_chunk, self._marker)
        if self.config.frame_stack > 1:
            rows_k = preceding_rows(self.reader, batch[INDEX], self.config.frame_stack,
                                    self._marker, self._read_rows)
            stack_frames(batch, rows_k, self._read_rows)
        if self.config.prioritized:
            w = (1.0 / (self._window_rows() * q)) ** self.config.beta
            batch[WEIGHT] = (w / w.max()).astype(np.float32)
        else:
            batch[WEIGHT] = np.ones(n, np.float32)
        self.stats['batches'] += 1
        return batch

    def fill(self, timeout_s: float = 60.0) -> int:
        """Block until the cache is full (or holds the whole window); return cached rows.

        A learner can call it once before training so that the first batches are not drawn
        from the few blocks loaded first.
        """
        deadline = time.monotonic() + timeout_s
        self.refresh()
        while time.monotonic() < deadline:
            self._install(self._cache.finished(wait_s=0.01))
            self._schedule(rotate=False)
            b_lo, _, b_end = self._strata()
            if not self._inflight and (not self._free or len(self._resident) >= b_end - b_lo):
                break
        return self.cached_rows

    def update_priorities(self, indices, priorities) -> None:
        """Set the priority of rows (e.g. |TD error|); only with prioritized=True."""
        if not self.config.prioritized:
            raise ValueError('update_priorities needs SamplerConfig(prioritized=True)')
        idx = np.asarray(indices, np.int64).reshape(-1)
        pr = np.abs(np.asarray(priorities, np.float64).reshape(-1)) + 1e-6
        if idx.shape != pr.shape:
            raise ValueError(f'{idx.size} indices but {pr.size} priorities')
        self._priorities[idx] = pr
        self._max_priority = max(self._max_priority, float(pr.max(initial=0)))
        blocks = idx // self.block_rows
        slots = np.array([self._resident.get(int(b), -1) for b in blocks])
        ok = slots >= 0
        if ok.any():
            self._set_weights(np.unique(slots[ok]))

    def close(self) -> None:
        self._cache.close()

    def _read_rows(self, rows: np.ndarray, fields: list[str]) -> dict[str, np.ndarray]:
        """The fields' values at rows: from the cache where their block is resident (a frame
        stack's rows are mostly in the sampled row's block), else from the store."""
        rows = np.asarray(rows, np.int64)
        blocks, offsets = rows // self.block_rows, rows % self.block_rows
        slots = np.array([self._resident.get(b, -1) for b in blocks.tolist()], np.int64)
        cached = (slots >= 0) & (offsets < self._slot_valid[slots])
        rest = rows[~cached]
        stored = self.reader.read(rest, fields, self._marker) if rest.size else {}
        out = {}
        for name in fields:
            arena = self._cache.arena[name]
            values = np.empty((len(rows), *arena.shape[2:]), arena.dtype)
            values[cached] = arena[slots[cached], offsets[cached]]
            if rest.size:
                values[~cached] = stored[name]
            out[name] = values
        return out

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------------------- policy
    def _window(self) -> tuple[int, int]:
        count = self._marker.count
        lo = 0 if self.config.window is None else max(0, count - self.config.window)
        return max(lo, self._marker.first), count

    def _window_rows(self) -> int:
        lo, hi = self._window()
        return max(1, hi - lo)

    def _strata(self) -> tuple[int, int, int]:
        """(first block of the window, first recent block, last block + 1)."""
        lo, hi = self._window()
        if hi == 0:
            return 0, 0, 0
        b_lo, b_end = lo // self.block_rows, (hi - 1) // self.block_rows + 1
        return b_lo, max(b_lo, b_end - self._n_recent_blocks), b_end

    def _valid_rows(self, block: int) -> int:
        return min(self.block_rows, self._marker.count - block * self.block_rows)

    def _schedule(self, rotate: bool = True) -> None:
        """Ask the loader for missing recent blocks, fill free slots, rotate old blocks."""
        b_lo, b_recent, b_end = self._strata()
        if b_end == 0:
            return
        budget = self.config.prefetch_blocks - len(self._inflight)
        for block in range(b_end - 1, b_recent - 1, -1):
            if budget <= 0:
                return
            slot = self._resident.get(block)
            stale = slot is not None and self._slot_valid[slot] < self._valid_rows(block)
            if (slot is None or stale) and block not in self._inflight:
                if self._request(block, b_lo, b_recent, for_recent=True):
                    budget -= 1
        n_old = b_recent - b_lo
        if n_old <= 0:
            return
        if rotate:
            self._swap_credit += self.config.swaps_per_batch
        while budget > 0:
            if self._free:
                pass
            elif rotate and self._swap_credit >= 1:
                self._swap_credit -= 1
            else:
                break
            block = self._random_uncached(b_lo, b_recent)
            if block is None or not self._request(block, b_lo, b_recent, for_recent=False):
                break
            budget -= 1
        self._swap_credit = min(self._swap_credit, float(self.config.prefetch_blocks))

    def _random_uncached(self, b_lo: int, b_recent: int) -> int | None:
        n_old = b_recent - b_lo
        blocks = self._slot_block
        cached = int(((blocks >= b_lo) & (blocks < b_recent)).sum())
        cached += sum(1 for b in self._inflight if b_lo <= b < b_recent)
        if cached >= n_old:
            return None
        for _ in range(64):
            block = b_lo + int(self._rng.integers(n_old))
            if block not in self._resident and block not in self._inflight:
                return block
        return None

    def _request(self, block: int, b_lo: int, b_recent: int, for_recent: bool) -> bool:
        if not self._free:
            blocks = self._slot_block
            old = np.flatnonzero((blocks >= 0) & (blocks < b_recent))
            if not old.size and for_recent:
                old = np.flatnonzero((blocks >= 0) & (blocks != block))
            if not old.size:
                return False
            self._evict(int(old[np.argmin(self._slot_order[old])]))
        slot = self._free.popleft()
        self._inflight[block] = slot
        self._cache.request(slot, block, self._valid_rows(block), self._marker)
        return True

    def _install(self, loads) -> None:
        error = None
        for load in loads:
            if self._inflight.get(load.block) == load.slot:
                del self._inflight[load.block]
            if load.error is not None:
                self._free.append(load.slot)
                if not isinstance(load.error, RowsEvictedError):
                    error = error or load.error
                continue
            lo = self._window()[0]
            if (load.block + 1) * self.block_rows <= lo:
                self._free.append(load.slot)
                continue
            previous = self._resident.get(load.block)
            if previous is not None:
                if self._slot_valid[previous] >= load.valid:
                    self._free.append(load.slot)
                    continue
                self._evict(previous)
            self._resident[load.block] = load.slot
            self._slot_block[load.slot] = load.block
            self._slot_valid[load.slot] = load.valid
            self._installs += 1
            self._slot_order[load.slot] = self._installs
            self._set_weights([load.slot])
            self.stats['loads'] += 1
        if error is not None:
            raise error

    def _evict(self, slot: int) -> None:
        block = int(self._slot_block[slot])
        if self._resident.get(block) == slot:
            del self._resident[block]
        self._slot_block[slot] = -1
        self._slot_valid[slot] = 0
        self._weights[slot] = 0
        self._in_window[slot] = False
        self._free.append(slot)
        self.stats['evictions'] += 1

    def _set_weights(self, slots) -> None:
        slots = np.asarray(slots, np.int64)
        if not slots.size:
            return
        lo, hi = self._window()
        first = self._slot_block[slots] * self.block_rows
        rows = first[:, None] + np.arange(self.block_rows)[None, :]
        in_window = (rows >= lo) & (rows < first[:, None] + self._slot_valid[slots][:, None])
        self._in_window[slots] = in_window
        w = in_window.astype(np.float64)
        if self.config.where is not None:
            field, values = self.config.where
            column = self._cache.arena[field][slots]
            w *= np.isin(column, np.asarray(values, column.dtype))
        bounds = self._marker.min_episode
        if bounds and EPISODE in self._cache.arena:
            bound = np.zeros(max(len(self._marker.robots), len(bounds)), np.int64)
            bound[:len(bounds)] = bounds
            codes = self._cache.arena[ROBOT_ID][slots].astype(np.int64)
            w *= self._cache.arena[EPISODE][slots] >= bound[np.minimum(codes, len(bound) - 1)]
        if self.config.prioritized:
            pr = self._priorities[np.minimum(rows, max(0, len(self._priorities) - 1))]
            w *= pr.astype(np.float64) ** self.config.alpha
        self._weights[slots] = w

    def _draw(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """N (slot, row) pairs and their sampling probabilities."""
        b_lo, b_recent, b_end = self._strata()
        lo, hi = self._window()
        recent_first = max(lo, b_recent * self.block_rows)
        blocks = self._slot_block
        is_recent = blocks >= b_recent
        masses, picks = [], []
        for members, total_rows in ((is_recent, hi - recent_first),
                                    ((blocks >= 0) & ~is_recent, recent_first - lo)):
            w = self._weights * members[:, None]
            cached = int(self._in_window[members].sum())
            mass = w.sum()
            masses.append(mass * total_rows / cached if cached and mass > 0 else 0.0)
            picks.append(w)
        share = np.array(masses) / sum(masses)
        counts = self._rng.multinomial(n, share)
        flat_idx, probs = [], []
        for k, (w, m) in enumerate(zip(picks, counts)):
            if not m:
                continue
            cum = np.cumsum(w.reshape(-1))
            chosen = np.searchsorted(cum, self._rng.random(m) * cum[-1], side='right')
            chosen = np.minimum(chosen, cum.size - 1)
            flat_idx.append(chosen)
            probs.append(share[k] * w.reshape(-1)[chosen] / cum[-1])
        flat = np.concatenate(flat_idx)
        order = self._rng.permutation(n)
        flat, q = flat[order], np.concatenate(probs)[order]
        return flat // self.block_rows, flat % self.block_rows, q
