"""A self-describing actor weights blob: JSON header (type, architecture, dims) + .npz arrays.

The learner packs the actor it trains; a policy unpacks it without being told the
architecture, so the two cannot silently disagree. The header's ``actor.type`` names the
registered actor type (``models.build_actor``); blobs from before types were 'mlp'. The
header may also carry the shared space of the robots the actor was trained for
(``realrl_common.embodiment.SharedSpace`` as JSON, key 'space'): how to pad each robot's
state and cut its action.

A blob may be partial: a learner that freezes part of the actor (``BCConfig.freeze``)
publishes, after a first full version, only the tensors it trains. The header then lists
the frozen tensors ('frozen') and a digest of their values ('frozen_digest'); ``unpack``
applies such a blob only onto a base actor (the policy's current one) of the same
architecture whose frozen tensors have that digest, and refuses it otherwise.
"""
from __future__ import annotations

import copy
import hashlib
import json
import struct
from dataclasses import asdict

import numpy as np
import torch
from torch import nn

from realrl_policy.models import (
    actor_config_from_json,
    actor_from_bytes,
    actor_to_bytes,
    arrays_from_bytes,
)

MAGIC = b'RRLA1'
PARTIAL_FIX = ('partial weights need the same frozen base: give the policy weights_file (a '
               'checkpoint of this learner\'s run, with listen_after_file: true), or start it '
               'before the learner so it gets the first, full version')
"""What a refused partial blob's error says to do."""


def frozen_names(actor: nn.Module) -> tuple[str, ...]:
    """Names of the actor's parameters that do not train (requires_grad False)."""
    return tuple(n for n, p in actor.named_parameters() if not p.requires_grad)


def tensors_digest(actor: nn.Module, names) -> str:
    """SHA-256 of the named tensors of the actor's state (names, shapes and float32 values,
    as a blob would carry them); '' if the actor lacks one of them."""
    state = actor.state_dict()
    h = hashlib.sha256()
    for name in sorted(names):
        if name not in state:
            return ''
        value = np.ascontiguousarray(state[name].detach().float().cpu().numpy())
        h.update(f'{name}{value.shape}'.encode())
        h.update(value.tobytes())
    return h.hexdigest()


def pack_actor(actor: nn.Module, space: dict | None = None, partial: bool = False) -> bytes:
    """The actor (and the shared space, if given) as one blob: header, then weights. With
    partial and parameters that do not train (``frozen_names``), those are left out and
    named, with their digest, in the header."""
    header = {'actor': asdict(actor.cfg), 'obs_dim': actor.obs_dim, 'act_dim': actor.act_dim}
    if space is not None:
        header['space'] = space
    frozen = frozen_names(actor) if partial else ()
    if frozen:
        header['frozen'] = list(frozen)
        header['frozen_digest'] = tensors_digest(actor, frozen)
    header = json.dumps(header).encode()
    return MAGIC + struct.pack('<I', len(header)) + header + actor_to_bytes(actor, frozen)


def is_partial(blob: bytes) -> bool:
    """Whether blob holds only the trained part of an actor (see the module's doc)."""
    return 'frozen' in _header(memoryview(blob))[0]


def _onto_base(base: nn.Module | None, cfg, obs_dim: int, act_dim: int, header: dict,
               weights: bytes, checked: bool) -> nn.Module:
    """A copy of base with a partial blob's tensors in it; ValueError (PARTIAL_FIX) unless
    base is of the same architecture and its frozen tensors have the blob's digest."""
    frozen = header['frozen']
    if base is None:
        raise ValueError(f'a partial weights blob ({len(frozen)} frozen tensors left out) and '
                         f'no actor to apply it on; {PARTIAL_FIX}')
    if (getattr(base, 'cfg', None), base.obs_dim, base.act_dim) != (cfg, obs_dim, act_dim):
        raise ValueError(f'a partial weights blob for a {cfg.type!r} actor of obs {obs_dim}/act '
                         f'{act_dim} and another actor to apply it on; {PARTIAL_FIX}')
    if tensors_digest(base, frozen) != header.get('frozen_digest'):
        raise ValueError(f'a partial weights blob whose frozen tensors ({frozen[0]} ...) '
                         f'differ from those of the actor it would go on; {PARTIAL_FIX}')
    arrays = arrays_from_bytes(weights, checked)
    state = base.state_dict()
    if set(arrays) | set(frozen) != set(state) or set(arrays) & set(frozen):
        raise ValueError(f'a partial weights blob holds {sorted(arrays)} and leaves out '
                         f'{frozen}; the actor has {sorted(state)}')
    actor = copy.deepcopy(base)
    for name, value in arrays.items():
        if value.shape != tuple(state[name].shape):
            raise ValueError(f'partial weights: {name!r} has shape {value.shape}, the actor '
                             f'{tuple(state[name].shape)}')
        state[name] = torch.from_numpy(value)
    actor.load_state_dict(state)
    actor.eval()
    return actor


def _header(blob: memoryview) -> tuple[dict, int]:
    if bytes(blob[:len(MAGIC)]) != MAGIC or len(blob) < len(MAGIC) + 4:
        raise ValueError('weights blob does not start with the realrl actor header')
    (n,) = struct.unpack_from('<I', blob, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        return json.loads(bytes(blob[start:start + n])), start + n
    except ValueError as e:
        raise ValueError(f'weights blob header is unreadable: {e}') from e


def unpack(blob: bytes, base: nn.Module | None = None,
           checked: bool = False) -> tuple[nn.Module, dict | None]:
    """The actor in blob and its shared space (None in blobs without one); ValueError if
    blob is not a realrl actor blob. A partial blob goes onto a copy of base (base itself is
    not changed), and is refused (ValueError naming the fix) without a base that fits.
    ``checked``: blob was checked whole (see `models.arrays_from_bytes`): the zip's CRC of
    each tensor is then not computed again.

    ``blob`` may be any bytes-like object; it is read through a view, never copied whole
    (a 100M-parameter blob was copied twice more before its arrays were read)."""
    blob = memoryview(blob).cast('B')
    header, end = _header(blob)
    try:
        cfg = actor_config_from_json(header['actor'])
        obs_dim, act_dim = int(header['obs_dim']), int(header['act_dim'])
        space = header.get('space')
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f'weights blob header is unreadable: {e}') from e
    if 'frozen' in header:
        return _onto_base(base, cfg, obs_dim, act_dim, header, blob[end:], checked), space
    return actor_from_bytes(cfg, obs_dim, act_dim, blob[end:], checked), space


def unpack_actor(blob: bytes) -> nn.Module:
    """The actor in blob; ValueError if blob is not a realrl actor blob."""
    return unpack(blob)[0]
