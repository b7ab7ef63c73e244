"""What the imitation algorithms share: the observation spec, the batch fields, the actor's
inputs and action-chunk targets; no ROS imports."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

BATCH_FIELDS = {
    'obs': 'float32 [B, state_dim]: the (padded) state the actor reads (or a mapping of '
           "'state' and 'image_<camera>' [B, H, W, 3] uint8, as the learner gives cameras)",
    'action': 'float32 [B, act_dim]: the action taken, in [-1, 1]',
    'action_chunk': 'float32 [B, H, act_dim]: the action taken and the H-1 after it in the '
                    'same episode (the last one repeated past the episode end), in [-1, 1]',
    'intervention': 'float32 [B]: 1 where a person chose the action (interventions, and '
                    'demonstrations, which are stored as interventions)',
    'image': 'uint8 [B, C, H, W] or [B, H, W, C]: the camera frame a vision actor reads '
             "(or batch['obs']['image_<camera>'])",
    'instruction': 'int64 [B, max_tokens]: the episode\'s instruction as tokens '
                   '(realrl_policy.actors.vla_tiny.tokenize), or its zero-padded UTF-8 bytes '
                   '(uint8, the store\'s column)',
}
"""Every batch key an algorithm here may ask for, and what it holds."""


@dataclass(frozen=True)
class ObservationSpec:
    """What an actor observes."""

    state_dim: int
    """Values of the (padded) state vector."""
    image_shape: tuple[int, ...] = ()
    """(C, H, W) of the camera image, () without one."""
    instruction: bool = False
    """Whether each episode carries a language instruction."""

    def __post_init__(self):
        if self.state_dim < 1:
            raise ValueError(f'state_dim must be >= 1, got {self.state_dim}')


def as_spec(obs_spec) -> ObservationSpec:
    """An ObservationSpec from itself, a state size (an int) or any spec with a state_dim
    (the learner's ``realrl_learner.algorithms.ObservationSpec``)."""
    if isinstance(obs_spec, ObservationSpec):
        return obs_spec
    if isinstance(getattr(obs_spec, 'state_dim', None), int):
        size = tuple(getattr(obs_spec, 'image_size', ()) or ())
        image = (3, *size) if getattr(obs_spec, 'cameras', ()) and len(size) == 2 else ()
        return ObservationSpec(obs_spec.state_dim, image_shape=image)
    if isinstance(obs_spec, (int, np.integer)):
        return ObservationSpec(int(obs_spec))
    raise ValueError(f'obs_spec must be an ObservationSpec or a state size, got {obs_spec!r}')


def chunk_length(actor: nn.Module) -> int:
    """H of a chunk actor, 0 for an actor of single actions (GaussianActor)."""
    return int(getattr(actor, 'chunk', 0)) if hasattr(actor, 'imitation_loss') else 0


def actor_fields(actor: nn.Module) -> tuple[str, ...]:
    """The batch keys an actor's inputs and its imitation target need."""
    fields = ['obs']
    if hasattr(actor, 'encode'):  # a vision-language actor
        fields += ['image', 'instruction']
    fields.append('action_chunk' if chunk_length(actor) > 1 else 'action')
    return tuple(fields)


def check_batch(batch: dict, fields: tuple[str, ...]) -> int:
    """Rows in batch; ValueError naming the missing fields and what they hold."""
    obs = batch.get('obs')
    in_obs = isinstance(obs, Mapping) and any(k.startswith('image_') for k in obs)
    missing = [f for f in fields if f not in batch and not (f == 'image' and in_obs)]
    if missing:
        raise ValueError(f'batch lacks {missing}; this algorithm reads '
                         + '; '.join(f'{f}: {BATCH_FIELDS[f]}' for f in fields))
    return len(obs['state'] if isinstance(obs, Mapping) else obs)


def actor_inputs(actor: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
    """The actor's inputs from a batch: 'obs' (the state), and for a vision-language actor
    'image' (its camera's frames) and 'instruction'."""
    obs = batch['obs']
    state = obs['state'] if isinstance(obs, Mapping) else obs
    inputs = {'obs': torch.as_tensor(state, dtype=torch.float32)}
    if not hasattr(actor, 'encode'):
        return inputs
    image = batch.get('image')
    if image is None:  # the learner's form: frames inside obs, one key per camera
        cams = sorted(k for k in obs if k.startswith('image_'))
        want = getattr(actor.cfg, 'camera', '')
        key = f'image_{want}' if want else (cams[0] if len(cams) == 1 else '')
        if key not in obs:
            raise ValueError(f'batch["obs"] has frames {cams}; the actor reads '
                             f'{want or "the only camera"}: set its camera')
        image = obs[key]
    inputs['image'] = torch.as_tensor(image)
    inputs['instruction'] = torch.as_tensor(batch['instruction'])
    return inputs


def imitation_target(actor: nn.Module, batch: dict) -> torch.Tensor:
    """The demonstrated actions: [B, act_dim] for a single-action actor, [B, H, act_dim]
    for a chunk actor."""
    h = chunk_length(actor)
    if h > 1:
        chunk = torch.as_tensor(batch['action_chunk'], dtype=torch.float32)
        if tuple(chunk.shape[1:]) != (h, actor.act_dim):
            raise ValueError(f"batch['action_chunk'] is {tuple(chunk.shape)}, the actor "
                             f'predicts [B, {h}, {actor.act_dim}]')
        return chunk
    action = torch.as_tensor(batch['action'], dtype=torch.float32)
    if action.ndim != 2 or action.shape[1] != actor.act_dim:
        raise ValueError(f"batch['action'] is {tuple(action.shape)}, expected "
                         f'[B, {actor.act_dim}]')
    return action[:, None, :] if h == 1 else action


def chunk_targets(actions: np.ndarray, chunk: int) -> np.ndarray:
    """One episode's actions [T, act_dim] -> [T, chunk, act_dim]: row t holds actions
    t .. t+chunk-1, the last action repeated past the episode's end."""
    actions = np.asarray(actions)
    idx = np.minimum(np.arange(len(actions))[:, None] + np.arange(chunk)[None, :],
                     len(actions) - 1)
    return actions[idx]
