"""Persistent replay store for online RL on physical robots (pure Python, no rclpy).

One ReplayWriter (the replay node) appends transitions and commits them durably; any number of
ReplayReader / Sampler instances in other processes read whole committed rows.
"""
from .config import CodecConfig, StoreConfig, WriterConfig
from .errors import StoreError, StoreLockedError
from .reader import ReplayReader
from .schema import ROBOT_ID, SEQ, FieldSpec, Schema
from .writer import CommitInfo, ReplayWriter

__all__ = ['CodecConfig', 'CommitInfo', 'FieldSpec', 'ReplayReader', 'ReplayWriter', 'ROBOT_ID',
           'SEQ', 'Schema', 'StoreConfig', 'StoreError', 'StoreLockedError', 'WriterConfig']
from .mixer import MixedSampler  # noqa: E402
from .sampler import Sampler  # noqa: E402
from .sampler_config import SamplerConfig  # noqa: E402

__all__ += ['MixedSampler', 'Sampler', 'SamplerConfig']
