"""Which number format a network's heavy products run in; no ROS imports.

Settings take 'float32', 'bfloat16' or 'auto'. 'auto' is bfloat16 where the hardware
multiplies it natively (a CUDA GPU, or a CPU with avx512_bf16 / amx_bf16, which runs
bfloat16 products about twice as fast as float32 ones) and float32 elsewhere.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import torch

DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16}
SETTINGS = (*DTYPES, 'auto')


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (Linux: avx512_bf16 or amx_bf16)."""
    try:
        flags = Path('/proc/cpuinfo').read_text()
    except OSError:
        return False
    return bool(re.search(r'\b(avx512_bf16|amx_bf16)\b', flags))


def resolve(name: str, device: str = 'cpu') -> torch.dtype:
    """The torch dtype of a setting for a device type ('cpu' or 'cuda')."""
    if name == 'auto':
        return torch.bfloat16 if device == 'cuda' or cpu_has_bf16() else torch.float32
    return DTYPES[name]
