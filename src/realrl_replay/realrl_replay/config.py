"""Configuration of a replay store (fixed at creation) and of its writer (per open)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

SHUFFLES = ('noshuffle', 'shuffle', 'bitshuffle')
CNAMES = ('lz4', 'lz4hc', 'zstd', 'zlib', 'blosclz')
FILTERS = ('none', 'delta', 'pixel_delta')


@dataclass(frozen=True)
class CodecConfig:
    """Compression of one kind of field (written into each Zarr array's metadata).

    Blosc with ``cname``/``clevel``/``shuffle``, after an optional filter of image rows
    (shape (H, W, C) uint8):

    - ``'pixel_delta'``: each byte minus the byte above it (the first line: minus the same
      channel of the pixel to its left), zigzag-mapped so that small differences of either sign
      have zero high bits (``pixel_delta.py``; in Zarr terms the codec ``realrl.pixel_delta``,
      which ``pixel_delta.register_zarr_codec()`` makes known to Zarr), bytes, blosc;
    - ``'delta'`` (stores made before it): the chunk reordered channels-first, then each byte
      minus the previous one. In Zarr terms: transpose(0, 3, 1, 2), numcodecs.delta(|u1),
      bytes, blosc.
    """

    cname: str = 'lz4'
    """Blosc compressor name, one of CNAMES."""
    clevel: int = 1
    """Compression level, 0 (none) to 9."""
    shuffle: str = 'bitshuffle'
    """Byte filter before Blosc compression, one of SHUFFLES."""
    filter: str = 'none'
    """One of FILTERS: 'none', 'pixel_delta' or 'delta' (see the class docstring)."""

    def __post_init__(self):
        if self.cname not in CNAMES:
            raise ValueError(f'cname must be one of {CNAMES}, got {self.cname!r}')
        if not 0 <= self.clevel <= 9:
            raise ValueError(f'clevel must be in 0..9, got {self.clevel}')
        if self.shuffle not in SHUFFLES:
            raise ValueError(f'shuffle must be one of {SHUFFLES}, got {self.shuffle!r}')
        if self.filter not in FILTERS:
            raise ValueError(f'filter must be one of {FILTERS}, got {self.filter!r}')


@dataclass(frozen=True)
class StoreConfig:
    """Layout choices written into the store at creation; reopening uses the stored ones.

    Codecs and chunk size were chosen by measurement (bench/replay_ingest.py: the replay
    node's layout, 4 robots, two 128x128 cameras, frames with sensor noise std 1.5, next_obs
    linked, fsync, on this project's 2-core VM; +-15 % between runs). Per 32-frame chunk:

    | image codec | ratio | encode MB/s (one core) |
    | pixel_delta + lz4-1 + bitshuffle (default) | 1.94 | ~1,250 |
    | pixel_delta + zstd-1 + bitshuffle | 2.22 | ~880 |
    | delta + lz4-1 + bitshuffle (format 2's first default) | 1.54 | ~1,350 |
    | lz4-1 + bitshuffle | 1.44 | ~2,100 |
    | delta + zstd-1 | 2.30 | ~330 |

    With the default, a transition of the node's layout takes ~57 KB on disk (196.8 KB raw;
    71 KB with delta). Ingest on two cores is bound by CPU, mostly encoding (bitshuffle and
    lz4), the pixel filter and copying rows; shards written with O_DIRECT keep the kernel's
    share small (see shards.py).
    """

    target_chunk_bytes: int = 2 << 20
    """Uncompressed bytes aimed at per chunk; a field's chunk holds the largest power of two of
    rows that fits (clamped to min/max_chunk_rows). 2 MiB gives 32 rows of a 128x128 RGB image
    (fewer files and syncs than 16, and fewer unlinked next_obs images)."""
    min_chunk_rows: int = 8
    """Fewest rows in a chunk, also for very large rows."""
    max_chunk_rows: int = 1024
    """Most rows in a chunk. The partial last chunk of every field is rewritten at each commit,
    so this bounds the write amplification of small fields."""
    target_shard_bytes: int = 64 << 20
    """Uncompressed bytes aimed at per shard file (many chunks of one field, see shards.py):
    chunks of 32 128x128 RGB images (1.5 MiB) come 42 to a file. Retention deletes whole
    shards, so up to one shard per field of evicted rows stays on disk."""
    max_shard_chunks: int = 256
    """Most chunks in a shard (256 keep its index within 4 KiB)."""
    large_row_bytes: int = 4096
    """Fields whose row is at least this many bytes (images) use ``large_codec``."""
    image_codec: CodecConfig = field(
        default_factory=lambda: CodecConfig('lz4', 1, 'bitshuffle', 'pixel_delta'))
    """Codec of large fields whose rows are (H, W, C) uint8 images (e.g. CodecConfig('zstd',
    1, 'bitshuffle', 'pixel_delta') for fewer bytes at more CPU)."""
    large_codec: CodecConfig = field(default_factory=CodecConfig)
    """Codec of other large fields."""
    small_codec: CodecConfig = field(default_factory=lambda: CodecConfig('zstd', 1, 'shuffle'))
    """Codec of small fields (state vectors, scalars)."""
    capacity_rows: int = 1 << 36
    """Rows the Zarr arrays are declared with; appending past it raises StoreError."""
    dedup_next_obs: bool = True
    """Store ``next_obs/<x>`` images (fields of at least large_row_bytes with an ``obs/<x>``
    twin) only where they differ from the ``obs/<x>`` of the same robot's next row in the same
    block; readers put them back, so batches are identical (see DESIGN.md)."""

    def __post_init__(self):
        if self.target_chunk_bytes < 1024:
            raise ValueError(f'target_chunk_bytes must be >= 1024, got {self.target_chunk_bytes}')
        for name in ('min_chunk_rows', 'max_chunk_rows'):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f'{name} must be a power of two >= 1, got {value}')
        if self.min_chunk_rows > self.max_chunk_rows:
            raise ValueError(
                f'min_chunk_rows ({self.min_chunk_rows}) must be <= max_chunk_rows '
                f'({self.max_chunk_rows})')
        if self.target_shard_bytes < 0:
            raise ValueError(f'target_shard_bytes must be >= 0 (0: one chunk per shard file), '
                             f'got {self.target_shard_bytes}')
        if not 1 <= self.max_shard_chunks <= 1 << 16:
            raise ValueError(f'max_shard_chunks must be within 1..65536, got '
                             f'{self.max_shard_chunks}')
        if self.capacity_rows < self.max_chunk_rows:
            raise ValueError(
                f'capacity_rows must be >= max_chunk_rows ({self.max_chunk_rows}), '
                f'got {self.capacity_rows}')

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> StoreConfig:
        data = dict(data)
        for key in ('image_codec', 'large_codec', 'small_codec'):
            if key in data:
                data[key] = CodecConfig(**data[key])
        data.setdefault('dedup_next_obs', False)  # stores of format 1 had neither
        data.setdefault('image_codec', data['large_codec'])
        return cls(**data)


@dataclass(frozen=True)
class WriterConfig:
    """Behaviour of one writer session (not stored)."""

    fsync: bool = True
    """fsync shard files, new shards' folders and the commit marker before commit() returns.
    Without it a commit survives a SIGKILL of the writer but not a power loss or kernel crash."""
    io_threads: int = 4
    """Threads that encode and write the fields' chunks of a commit in parallel."""
    retention: RetentionConfig | None = None
    """Size/age cap: oldest whole episodes are evicted at commits (None: keep everything)."""
    plain_view_interval_s: float = 10.0
    """What a plain Zarr reader sees (array shapes, the group's ``committed_rows``, the last
    incomplete chunks; plain_view.py) follows the commits at open, at close and at the first
    commit this many seconds after its last update (0: at every commit, at a cost)."""

    def __post_init__(self):
        if self.io_threads < 1:
            raise ValueError(f'io_threads must be >= 1, got {self.io_threads}')
        if not self.plain_view_interval_s >= 0:
            raise ValueError(f'plain_view_interval_s must be >= 0, got '
                             f'{self.plain_view_interval_s}')


@dataclass(frozen=True)
class RetentionConfig:
    """When a store outgrows a cap, whole oldest episodes are evicted.

    Eviction moves the store's first valid row (a watermark in the commit marker) past the
    oldest rows and drops, per robot, every episode that had a row below it (rows of those
    episodes above the watermark stay on disk but no reader returns them), then deletes the
    chunk files wholly below the watermark. Episodes are ``(robot_id, episode_id)``; a store
    without an ``episode_id`` field is cut at the row. Evicting goes down to ``low_water`` of
    the cap so that it happens in steps, not at every commit.
    """

    max_rows: int | None = None
    """Most valid rows to keep."""
    max_bytes: int | None = None
    """Most bytes of chunk files to keep (estimated from the store's mean bytes per row)."""
    max_age_s: float | None = None
    """Evict episodes whose rows are older than this, by ``age_field`` (nanoseconds, wall
    clock) against the time of the commit."""
    age_field: str = 'stamp_ns'
    """Scalar int64 field of each row's time in ns (the node's ``stamp_ns``)."""
    low_water: float = 0.9
    """Fraction of max_rows / max_bytes to evict down to."""

    def __post_init__(self):
        if self.max_rows is not None and self.max_rows < 1:
            raise ValueError(f'max_rows must be >= 1 or None, got {self.max_rows}')
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ValueError(f'max_bytes must be >= 1 or None, got {self.max_bytes}')
        if self.max_age_s is not None and self.max_age_s <= 0:
            raise ValueError(f'max_age_s must be > 0 or None, got {self.max_age_s}')
        if not 0 < self.low_water <= 1:
            raise ValueError(f'low_water must be in (0, 1], got {self.low_water}')
