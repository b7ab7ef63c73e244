"""A self-describing actor weights blob: JSON header (type, architecture, dims) + .npz arrays.

The learner packs the actor it trains; a policy unpacks it without being told the
architecture, so the two cannot silently disagree. The header's ``actor.type`` names the
registered actor type (``models.build_actor``); blobs from before types were 'mlp'. The
header may also carry the shared space of the robots the actor was trained for
(``realrl_common.embodiment.SharedSpace`` as JSON, key 'space'): how to pad each robot's
state and cut its action.
"""
from __future__ import annotations

import json
import struct
from dataclasses import asdict

from torch import nn

from realrl_policy.models import actor_config_from_json, actor_from_bytes, actor_to_bytes

MAGIC = b'RRLA1'


def pack_actor(actor: nn.Module, space: dict | None = None) -> bytes:
    """The actor (and the shared space, if given) as one blob: header, then weights."""
    header = {'actor': asdict(actor.cfg), 'obs_dim': actor.obs_dim, 'act_dim': actor.act_dim}
    if space is not None:
        header['space'] = space
    header = json.dumps(header).encode()
    return MAGIC + struct.pack('<I', len(header)) + header + actor_to_bytes(actor)


def unpack(blob: bytes) -> tuple[nn.Module, dict | None]:
    """The actor in blob and its shared space (None in blobs without one); ValueError if
    blob is not a realrl actor blob."""
    blob = bytes(blob)
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise ValueError('weights blob does not start with the realrl actor header')
    (n,) = struct.unpack_from('<I', blob, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(blob[start:start + n])
        cfg = actor_config_from_json(header['actor'])
        obs_dim, act_dim = int(header['obs_dim']), int(header['act_dim'])
        space = header.get('space')
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f'weights blob header is unreadable: {e}') from e
    return actor_from_bytes(cfg, obs_dim, act_dim, blob[start + n:]), space


def unpack_actor(blob: bytes) -> nn.Module:
    """The actor in blob; ValueError if blob is not a realrl actor blob."""
    return unpack(blob)[0]
