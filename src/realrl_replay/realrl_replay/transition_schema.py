"""The replay store's fields for the transitions of a robot, from its description."""
from __future__ import annotations

import numpy as np

from realrl_common.convert import from_f32


def describe_robot(msg) -> dict:
    """A RobotDescription message as plain JSON-able data (kept in the store's metadata)."""
    return {
        'robot_id': msg.robot_id, 'kind': msg.kind, 'control_hz': msg.control_hz,
        'state_dim': int(msg.state_dim),
        'state_layout': {n: [int(a), int(b)] for n, a, b in
                         zip(msg.state_names, msg.state_starts, msg.state_stops)},
        'action_dim': int(msg.action_dim),
        'action_low': from_f32(msg.action_low).tolist(),
        'action_high': from_f32(msg.action_high).tolist(),
        'action_units': msg.action_units, 'cameras': list(msg.camera_names),
        'image_size': [int(msg.image_height), int(msg.image_width)],
        'episode_max_steps': int(msg.episode_max_steps),
        'capabilities': list(msg.capabilities),
    }


def transition_schema(desc: dict) -> dict:
    """Field name -> (shape, dtype) for one robot description."""
    schema = {
        'obs/state': ((desc['state_dim'],), np.float32),
        'next_obs/state': ((desc['state_dim'],), np.float32),
        'action': ((desc['action_dim'],), np.float32),
        'reward': ((), np.float32),
        'terminated': ((), np.bool_),
        'truncated': ((), np.bool_),
        'episode_id': ((), np.int64),
        'step': ((), np.int32),
        'policy_version': ((), np.int64),
        'intervention': ((), np.bool_),
        'stamp_ns': ((), np.int64),
    }
    h, w = desc['image_size']
    for cam in desc['cameras']:
        schema[f'obs/image_{cam}'] = ((h, w, 3), np.uint8)
        schema[f'next_obs/image_{cam}'] = ((h, w, 3), np.uint8)
    return schema
