"""Persistent replay store for online RL on physical robots (pure Python, no rclpy).

One ReplayWriter (the replay node) appends transitions and commits them durably; any number of
ReplayReader / Sampler instances in other processes read whole committed rows. Stores of
earlier runs and imported demonstrations are mixed in read-only (open_sources, MixedSampler).
"""
from .config import CodecConfig, RetentionConfig, StoreConfig, WriterConfig
from .errors import RowsEvictedError, StoreError, StoreLockedError
from .reader import ReplayReader
from .schema import LINK, ROBOT_ID, SEQ, FieldSpec, Schema
from .writer import CommitInfo, ReplayWriter

__all__ = ['CodecConfig', 'CommitInfo', 'FieldSpec', 'LINK', 'ReplayReader', 'ReplayWriter',
           'RetentionConfig', 'ROBOT_ID', 'RowsEvictedError', 'SEQ', 'Schema', 'StoreConfig',
           'StoreError', 'StoreLockedError', 'WriterConfig']
from .mixer import MixedSampler, open_sources  # noqa: E402
from .sampler import Sampler  # noqa: E402
from .sampler_config import SamplerConfig  # noqa: E402

__all__ += ['MixedSampler', 'Sampler', 'SamplerConfig', 'open_sources']
