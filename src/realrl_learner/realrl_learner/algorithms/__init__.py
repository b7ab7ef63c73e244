"""Learning algorithms as plug-ins, chosen by ``algorithm.type`` in the learner's config.

A package registers an algorithm class under the ``realrl.algorithms`` entry points of its
setup.py (``sac = realrl_learner.sac:SAC``). The contract (docs/architecture.md,
"Algorithms"):

- ``config_class``: a frozen dataclass of its hyperparameters, validated in
  ``__post_init__`` without ROS (ValueError naming the field). It has the fields the
  trainer reads: ``type`` (the registered name), ``batch_size``, ``learning_starts``,
  ``updates_per_step`` (the UTD ratio the trainer paces to) and ``actor``
  (``realrl_policy.models.ActorConfig``, the network the policy serves).
- ``cls(obs: ObservationSpec, act_dim, cfg, seed)`` builds networks and optimisers.
- ``update(batch) -> dict[str, float]``: one step on a batch of torch tensors (keys
  ``batch_keys``, leading dimension B; 'obs'/'next_obs' as ``ObservationSpec`` says);
  metrics namespaced 'train/...'.
- ``actor``: the ``nn.Module`` the policy runs (packed by ``realrl_policy.weights_blob``);
  ``updates``: updates made so far (the trainer paces and names checkpoints by it).
- ``state_dict()`` / ``load_state_dict(state)``: everything an exact resume of the
  algorithm needs (networks, optimisers, temperature, counters), torch.save-able with
  ``weights_only`` loading. The trainer adds the RNG states and the sampler's.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Mapping

from realrl_common.config import ConfigError, build_config
from realrl_common.plugins import ALGORITHMS, POLICIES, lookup
from realrl_policy.models import actor_config_class, actor_config_from_json

DEFAULT_TYPE = 'sac'


@dataclass(frozen=True)
class ObservationSpec:
    """What an algorithm's observations hold.

    Without cameras a batch's 'obs' and 'next_obs' are float tensors [B, state_dim] (the
    actor's input: padded state and embodiment one-hot). With cameras they are mappings:
    'state' as above and 'image_<camera>' uint8 [B, H, W, 3] per camera ([B, H, W, 3k]: the
    last k frames, with the encoder's frame_stack k), the input of image actors
    (``realrl_policy.cnn_actor``).
    """

    state_dim: int
    cameras: tuple[str, ...] = ()
    image_size: tuple[int, int] = (0, 0)

    @property
    def image_keys(self) -> tuple[str, ...]:
        return tuple(f'image_{cam}' for cam in self.cameras)


def actor_uses_images(actor_type: str) -> bool:
    """Whether the registered actor type takes camera frames (its ``uses_images``)."""
    return bool(getattr(lookup(POLICIES, actor_type, 'policy type'), 'uses_images', False))


def actor_takes_images(actor_type: str) -> bool:
    """Whether the registered actor type reads one camera's frames beside an instruction
    (its ``takes_images``, e.g. 'vla_tiny'; batch key 'image')."""
    return bool(getattr(lookup(POLICIES, actor_type, 'policy type'), 'takes_images', False))


def algorithm_class(name: str) -> type:
    """The algorithm class registered as name; ConfigError listing the known ones."""
    try:
        cls = lookup(ALGORITHMS, name, 'algorithm type')
    except ConfigError as e:
        raise ConfigError(f'algorithm.type: {e}') from None
    if not dataclasses.is_dataclass(getattr(cls, 'config_class', None)):
        raise ConfigError(f'algorithm.type {name!r}: {cls.__name__} has no config_class '
                          '(a frozen dataclass of its hyperparameters)')
    return cls


def algorithm_config(value: Any, key: str = 'algorithm'):
    """The algorithm's config from a mapping (``type`` plus its hyperparameters, as in the
    graph YAML) or from a config instance; ConfigError naming '<key>.<field>'."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = algorithm_class(getattr(value, 'type', ''))
        if not isinstance(value, cls.config_class):
            raise ConfigError(f'{key}: a {type(value).__name__} with type {value.type!r}, '
                              f'but that type takes a {cls.config_class.__name__}')
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f'{key}: expected a mapping with a type and its '
                          f'hyperparameters, e.g. {{type: sac, batch_size: 256}}; got {value!r}')
    name = value.get('type', DEFAULT_TYPE)
    if not isinstance(name, str):
        raise ConfigError(f'{key}.type: expected a string, got {name!r}')
    cls = algorithm_class(name)
    actor = value.get('actor')
    declared = typing.get_type_hints(cls.config_class).get('actor')
    if isinstance(actor, Mapping) and isinstance(declared, type):
        own = actor_config_class(actor.get('type', 'mlp'))
        if own is not declared and issubclass(own, declared):
            # e.g. bc's ActorConfig-typed actor given a 'vla_tiny': build the type's own class
            rest = {k: v for k, v in value.items() if k != 'actor'}
            cfg = build_config(cls.config_class, {**rest, 'type': name}, path=f'{key}.')
            actor_cfg = actor_config_from_json(dict(actor), path=f'{key}.actor.')
            try:
                return dataclasses.replace(cfg, actor=actor_cfg)
            except (ValueError, TypeError) as e:
                raise ConfigError(f'{key}: {e}') from None
    return build_config(cls.config_class, {**value, 'type': name}, path=f'{key}.')


def build_algorithm(obs: ObservationSpec, act_dim: int, cfg, seed: int = 0):
    """A new algorithm of the type cfg names (cfg from ``algorithm_config``)."""
    return algorithm_class(cfg.type)(obs, act_dim, cfg, seed)
