"""Configuration of a cache-aware Sampler."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplerConfig:
    """How a learner samples a store through a bounded memory cache."""

    batch_size: int = 256
    """Transitions per batch (sample() may ask for another number)."""
    cache_bytes: int = 1 << 30
    """Memory for decoded rows of the selected fields (the arena). The newest rows are always
    cached; the rest of the window is represented by a random subset of blocks that rotates."""
    window: int | None = None
    """Sample only the most recent ``window`` committed transitions (None: all)."""
    recent_fraction: float = 0.25
    """Share of the cache reserved for the newest blocks, which stay cached."""
    swaps_per_batch: float = 1.0
    """Cached older blocks replaced by random uncached ones per batch: the cache's rotation
    speed. Higher turns the cached subset over faster (each block stays about
    old_slots / swaps_per_batch batches) at more decode work beside the learner."""
    prefetch_blocks: int = 8
    """Blocks the background thread may load ahead (slots kept spare for them)."""
    refresh_interval_s: float = 0.2
    """How often sample() looks for newly committed transitions."""
    fields: tuple[str, ...] | None = None
    """Fields to load and return (None: all)."""
    prioritized: bool = False
    """Sample rows in proportion to priority**alpha (update_priorities) instead of uniformly."""
    alpha: float = 0.6
    """Priority exponent."""
    beta: float = 0.4
    """Importance-weight exponent; weights are returned under 'weight' (ones if uniform)."""
    where: tuple[str, tuple] | None = None
    """Only rows whose scalar field is one of the values, e.g. ('intervention', (True,))."""
    seed: int | None = None
    """Seed of the sampling and rotation random generator."""
    load_timeout_s: float = 30.0
    """How long sample() waits for the first rows before raising TimeoutError."""
    action_chunk: int = 0
    """With H >= 1, each batch also holds 'action_chunk' [B, H, action_dim]: each row's action
    and the H-1 its robot took next in the same episode, the last repeated past the
    episode's end (``action_chunks.following_actions``); 0: no chunks."""
    frame_stack: int = 1
    """With k > 1, each returned camera field obs/image_<camera> holds the row's frame and
    the k-1 of its robot's previous steps in the episode, stacked along the last axis
    ([B, H, W, 3k], oldest first; the episode's first frame repeated before its k-th step),
    and next_obs/image_<camera> the stack one step later (``frame_stack``); the store keeps
    one frame per row. 1: the row's own frames."""

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {self.batch_size}')
        if self.cache_bytes < 1:
            raise ValueError(f'cache_bytes must be > 0, got {self.cache_bytes}')
        if self.window is not None and self.window < 1:
            raise ValueError(f'window must be >= 1 or None, got {self.window}')
        if not 0.0 < self.recent_fraction < 1.0:
            raise ValueError(f'recent_fraction must be in (0, 1), got {self.recent_fraction}')
        if self.swaps_per_batch < 0:
            raise ValueError(f'swaps_per_batch must be >= 0, got {self.swaps_per_batch}')
        if self.prefetch_blocks < 1:
            raise ValueError(f'prefetch_blocks must be >= 1, got {self.prefetch_blocks}')
        if self.refresh_interval_s < 0:
            raise ValueError(f'refresh_interval_s must be >= 0, got {self.refresh_interval_s}')
        if self.alpha < 0 or self.beta < 0:
            raise ValueError(f'alpha and beta must be >= 0, got {self.alpha}, {self.beta}')
        if self.action_chunk < 0:
            raise ValueError(f'action_chunk must be >= 0 (0: none), got {self.action_chunk}')
        if isinstance(self.frame_stack, bool) or not isinstance(self.frame_stack, int) \
                or self.frame_stack < 1:
            raise ValueError(f'frame_stack must be an integer >= 1, got {self.frame_stack!r}')
        if self.where is not None and (len(self.where) != 2 or not self.where[1]):
            raise ValueError(f"where must be (field, (values...)), got {self.where!r}")
