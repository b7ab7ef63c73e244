"""A self-describing actor weights blob: JSON header (architecture, dims) + .npz arrays.

The learner packs the actor it trains; a policy unpacks it without being told the
architecture, so the two cannot silently disagree.
"""
from __future__ import annotations

import json
import struct
from dataclasses import asdict

from realrl_policy.models import ActorConfig, GaussianActor, actor_from_bytes, actor_to_bytes

MAGIC = b'RRLA1'


def pack_actor(actor: GaussianActor) -> bytes:
    header = json.dumps({'actor': asdict(actor.cfg), 'obs_dim': actor.obs_dim,
                         'act_dim': actor.act_dim}).encode()
    return MAGIC + struct.pack('<I', len(header)) + header + actor_to_bytes(actor)


def unpack_actor(blob: bytes) -> GaussianActor:
    """The actor in blob; ValueError if blob is not a realrl actor blob."""
    blob = bytes(blob)
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise ValueError('weights blob does not start with the realrl actor header')
    (n,) = struct.unpack_from('<I', blob, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(blob[start:start + n])
        cfg = ActorConfig(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in header['actor'].items()})
        obs_dim, act_dim = int(header['obs_dim']), int(header['act_dim'])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f'weights blob header is unreadable: {e}') from e
    return actor_from_bytes(cfg, obs_dim, act_dim, blob[start + n:])
