"""Configuration of a replay store (fixed at creation) and of its writer (per open)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

SHUFFLES = ('noshuffle', 'shuffle', 'bitshuffle')
CNAMES = ('lz4', 'lz4hc', 'zstd', 'zlib', 'blosclz')


@dataclass(frozen=True)
class CodecConfig:
    """Blosc compression of one kind of field (written into each Zarr array's metadata)."""

    cname: str = 'lz4'
    """Blosc compressor name, one of CNAMES."""
    clevel: int = 1
    """Compression level, 0 (none) to 9."""
    shuffle: str = 'bitshuffle'
    """Byte filter before compression, one of SHUFFLES."""

    def __post_init__(self):
        if self.cname not in CNAMES:
            raise ValueError(f'cname must be one of {CNAMES}, got {self.cname!r}')
        if not 0 <= self.clevel <= 9:
            raise ValueError(f'clevel must be in 0..9, got {self.clevel}')
        if self.shuffle not in SHUFFLES:
            raise ValueError(f'shuffle must be one of {SHUFFLES}, got {self.shuffle!r}')


@dataclass(frozen=True)
class StoreConfig:
    """Layout choices written into the store at creation; reopening uses the stored ones.

    Defaults were chosen by measurement (bench/replay_ingest.py prints the codec survey): on
    camera-like 128x128 RGB frames with sensor noise, lz4+bitshuffle gave 1.2x at ~1 GB/s per
    core, zstd-1+bitshuffle 1.35x at ~0.5 GB/s; lz4 keeps ingest within one core.
    """

    target_chunk_bytes: int = 1 << 20
    """Uncompressed bytes aimed at per chunk; a field's chunk holds the largest power of two of
    rows that fits (clamped to min/max_chunk_rows). 1 MiB gives 16 rows of a 128x128 RGB image."""
    min_chunk_rows: int = 8
    """Fewest rows in a chunk, also for very large rows."""
    max_chunk_rows: int = 1024
    """Most rows in a chunk. The partial last chunk of every field is rewritten at each commit,
    so this bounds the write amplification of small fields."""
    large_row_bytes: int = 4096
    """Fields whose row is at least this many bytes (images) use ``large_codec``."""
    large_codec: CodecConfig = field(default_factory=CodecConfig)
    """Codec of large fields (images)."""
    small_codec: CodecConfig = field(default_factory=lambda: CodecConfig('zstd', 1, 'shuffle'))
    """Codec of small fields (state vectors, scalars)."""
    capacity_rows: int = 1 << 36
    """Rows the Zarr arrays are declared with; appending past it raises StoreError."""

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
        if self.capacity_rows < self.max_chunk_rows:
            raise ValueError(
                f'capacity_rows must be >= max_chunk_rows ({self.max_chunk_rows}), '
                f'got {self.capacity_rows}')

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> StoreConfig:
        data = dict(data)
        data['large_codec'] = CodecConfig(**data['large_codec'])
        data['small_codec'] = CodecConfig(**data['small_codec'])
        return cls(**data)


@dataclass(frozen=True)
class WriterConfig:
    """Behaviour of one writer session (not stored)."""

    fsync: bool = True
    """fsync chunk files, their folders and the commit marker before commit() returns. Without
    it a commit survives a SIGKILL of the writer but not a power loss or kernel crash."""
    io_threads: int = 4
    """Threads that encode and write the fields' chunks of a commit in parallel."""

    def __post_init__(self):
        if self.io_threads < 1:
            raise ValueError(f'io_threads must be >= 1, got {self.io_threads}')
