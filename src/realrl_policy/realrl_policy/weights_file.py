"""The actor's weights blob and version from a learner's checkpoint file (no ROS).

Read and checked whole before anything is served: `realrl eval` calls it before it starts a
graph, and the policy node before it spins, so a truncated file, a file of another format
or a checkpoint without a usable actor is one clear error naming the file, not a node that
fails at every restart.
"""
from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import torch

from realrl_policy.weights_blob import unpack

FIX = 'give <run>/checkpoints/latest.pt of a `realrl train` run'
"""The fix every error of this module names."""


def read_weights_file(path: str | Path) -> tuple[int, bytes]:
    """(version, weights blob) of a checkpoint written by the learner (Trainer.state_dict);
    ValueError naming the file and what is wrong with it: missing, unreadable (truncated,
    another format), without an actor blob, or with one that does not unpack."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'weights_file {path}: no such file; {FIX}')
    try:
        state = torch.load(path, weights_only=True, map_location='cpu')
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, struct.error,
            ValueError, OSError, TypeError, KeyError, IndexError, AttributeError) as e:
        # each seen or possible from torch's unpickler on bytes that are not a checkpoint
        raise ValueError(f'weights_file {path}: not a readable torch checkpoint (truncated, '
                         f'or another format): {type(e).__name__}: {e}; {FIX}') from None
    if not isinstance(state, dict) or 'actor_blob' not in state:
        raise ValueError(f'weights_file {path}: not a learner checkpoint with an actor '
                         f"('actor_blob'); {FIX} (a newer run's, if this one is old)")
    blob = bytes(state['actor_blob'])
    try:
        unpack(blob)
    except (ValueError, RuntimeError, KeyError) as e:
        raise ValueError(f'weights_file {path}: its actor blob does not unpack: {e}; '
                         f'{FIX}') from None
    return int(state.get('version', 0)), blob
