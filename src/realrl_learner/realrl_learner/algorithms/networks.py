"""Network plumbing shared by the algorithms: the actor of an observation spec, critics
on top of the actor's image encoder, and batch observations checked against the spec.

An image actor owns its encoder (the policy needs it); the critics use the same module
(``with_encoder``), so the critic loss trains it. The actor's optimiser gets the actor's
parameters without the encoder's (``actor_parameters``) and the actor sees the features
detached: only critic gradients reach the encoder. An update encodes its batch once
(``encode_pair``) and hands the features to the heads (``actor_head``, ``critic_head``); the
target critics are a copy of the critic head alone.
"""
from __future__ import annotations

import torch
from torch import nn

from realrl_learner.algorithms import ObservationSpec
from realrl_policy.encoders import load_trunk
from realrl_policy.models import ActorConfig, build_actor


def make_actor(cfg: ActorConfig, obs: ObservationSpec, act_dim: int) -> nn.Module:
    """The actor of cfg.type for obs; an image actor's encoder gets its pretrained trunk
    (``encoder.pretrained``) here, in the learner: the policy rebuilds it from the weights."""
    actor = build_actor(cfg, obs.state_dim, act_dim)
    encoder = getattr(actor, 'encoder', None)
    if encoder is not None:
        missing = [c for c in cfg.encoder.cameras if c not in obs.cameras]
        if missing:
            raise ValueError(f'actor.encoder.cameras {missing} are not in the replay store, '
                             f'whose cameras are {list(obs.cameras)}')
        if cfg.encoder.pretrained:
            load_trunk(encoder, cfg.encoder.pretrained)
    elif obs.cameras:
        raise ValueError(f'the observations have cameras {list(obs.cameras)} but actor type '
                         f'{cfg.type!r} takes no images')
    return actor


def critic_input_dim(actor: nn.Module) -> int:
    """Width of the critics' observation input: the state, plus the image features."""
    encoder = getattr(actor, 'encoder', None)
    return actor.obs_dim + (encoder.cfg.feature_dim if encoder is not None else 0)


def actor_parameters(actor: nn.Module) -> list[nn.Parameter]:
    """The actor's parameters its own optimiser steps: all but the shared encoder's."""
    encoder = getattr(actor, 'encoder', None)
    shared = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    return [p for p in actor.parameters() if id(p) not in shared]


class EncodedCritic(nn.Module):
    """A critic(obs, action) on [image features, state]: the encoder runs with gradients, so
    the critic's optimiser (which holds the encoder's parameters) trains it."""

    def __init__(self, encoder: nn.Module, critic: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.critic = critic

    def forward(self, obs: dict[str, torch.Tensor], action: torch.Tensor):
        return self.critic(torch.cat([self.encoder(obs), obs['state']], dim=-1), action)


def actor_head(actor: nn.Module) -> nn.Module:
    """What maps (features, mask) to the actor's outputs: the head of an image actor, the
    actor itself for a state actor."""
    return actor.head if getattr(actor, 'encoder', None) is not None else actor


def critic_head(critic: nn.Module) -> nn.Module:
    """What maps (features, action) to Q values: the critic of an EncodedCritic, else the
    critic itself. The target critics are a copy of it (no encoder of their own)."""
    return critic.critic if isinstance(critic, EncodedCritic) else critic


def encode_pair(actor: nn.Module, obs, next_obs):
    """(features of obs, features of next_obs): [image features, state] for an image actor,
    the states themselves for a state actor.

    The encoder runs once per update on each: obs WITH gradients (the critic loss trains the
    encoder through them; the actor and temperature steps use them detached), next_obs
    WITHOUT (the TD target's actor and target critics read them; as DrQ-v2, the online
    encoder gives the target's features, so there is no target encoder to run and average).
    Forward-only on next_obs costs a third of a backward-capable pass over both at once.
    """
    encoder = getattr(actor, 'encoder', None)
    if encoder is None:
        return obs, next_obs
    x = torch.cat([encoder(obs), obs['state']], dim=-1)
    with torch.no_grad():
        x_next = torch.cat([encoder(next_obs), next_obs['state']], dim=-1)
    return x, x_next


def target_critic_state(state: dict) -> dict:
    """A target critic's state dict as the head-only target holds it: checkpoints from before
    the target lost its encoder copy held 'encoder.*' and 'critic.*' keys."""
    if not any(k.startswith('encoder.') for k in state):
        return state
    return {k[len('critic.'):]: v for k, v in state.items() if k.startswith('critic.')}


def with_encoder(actor: nn.Module, critic: nn.Module) -> nn.Module:
    """The critic as is for a state actor; on the actor's encoder for an image actor."""
    encoder = getattr(actor, 'encoder', None)
    return critic if encoder is None else EncodedCritic(encoder, critic)


def batch_obs(value, obs: ObservationSpec, key: str):
    """batch[key] ('obs' or 'next_obs') as the actor's input: a float tensor [B, state_dim],
    or with cameras a mapping of 'state' and uint8 'image_<camera>' tensors."""
    if not obs.cameras:
        state = torch.as_tensor(value, dtype=torch.float32)
        _check_state(state, obs, key)
        return state
    if not isinstance(value, dict):
        raise ValueError(f'batch[{key!r}] must be a mapping of state and images '
                         f'{["state", *obs.image_keys]}, got {type(value).__name__}')
    state = torch.as_tensor(value.get('state'), dtype=torch.float32)
    _check_state(state, obs, key)
    out = {'state': state}
    for image_key in obs.image_keys:
        frames = value.get(image_key)
        if frames is None:
            raise ValueError(f'batch[{key!r}] lacks {image_key!r}')
        frames = torch.as_tensor(frames)
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[0] != len(state):
            raise ValueError(f'batch[{key!r}][{image_key!r}] must be uint8 [B, H, W, 3], got '
                             f'{frames.dtype} {tuple(frames.shape)}')
        out[image_key] = frames
    return out


def _check_state(state: torch.Tensor, obs: ObservationSpec, key: str) -> None:
    if state.ndim != 2 or state.shape[1] != obs.state_dim:
        raise ValueError(f'batch[{key!r}] state must be [B, {obs.state_dim}], got '
                         f'{tuple(state.shape)}')
