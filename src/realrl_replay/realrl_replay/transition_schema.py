"""The replay store's fields for the transitions of one or several robots.

Robots of different kinds share one store through ``realrl_common.embodiment.SharedSpace``:
states are stored in the shared (layout-aligned, zero-padded) state, actions as the prefix
of the widest action, and each row's ``embodiment`` field says which robot kind wrote it
(its index in the space, which the store's metadata holds under 'space').
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from realrl_common.embodiment import SharedSpace, describe_robot  # noqa: F401 (re-exported)

EMBODIMENT = 'embodiment'


def transition_schema(desc: dict) -> dict:
    """Field name -> (shape, dtype) for one robot description (no embodiment field)."""
    return _schema(desc['state_dim'], desc['action_dim'], desc['cameras'], desc['image_size'])


def store_schema(descriptions: Mapping[str, dict]) -> tuple[dict, SharedSpace]:
    """The fields of a store for all these robots, and their shared space.

    Cameras are the union of the robots' cameras; a robot without one of them stores black
    frames there (they compress to almost nothing). All robots with cameras must have the
    same image size.
    """
    space = SharedSpace.from_descriptions(descriptions)
    cameras: list[str] = []
    sizes = {}
    for rid in sorted(descriptions):
        desc = descriptions[rid]
        for cam in desc['cameras']:
            if cam not in cameras:
                cameras.append(cam)
        if desc['cameras']:
            sizes[rid] = tuple(desc['image_size'])
    if len(set(sizes.values())) > 1:
        raise ValueError(f'robots have different camera image sizes {sizes}; one store needs '
                         'one image_size: set the same image_size on every driver')
    size = next(iter(sizes.values()), (0, 0))
    schema = _schema(space.state_dim, space.action_dim, cameras, size)
    schema[EMBODIMENT] = ((), np.int16)
    return schema, space


def _schema(state_dim: int, action_dim: int, cameras, image_size) -> dict:
    schema = {
        'obs/state': ((state_dim,), np.float32),
        'next_obs/state': ((state_dim,), np.float32),
        'action': ((action_dim,), np.float32),
        'reward': ((), np.float32),
        'terminated': ((), np.bool_),
        'truncated': ((), np.bool_),
        'episode_id': ((), np.int64),
        'step': ((), np.int32),
        'policy_version': ((), np.int64),
        'intervention': ((), np.bool_),
        'stamp_ns': ((), np.int64),
    }
    h, w = image_size
    for cam in cameras:
        schema[f'obs/image_{cam}'] = ((h, w, 3), np.uint8)
        schema[f'next_obs/image_{cam}'] = ((h, w, 3), np.uint8)
    return schema
