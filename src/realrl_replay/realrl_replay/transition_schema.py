"""The replay store's fields for the transitions of one or several robots.

Derived from ``realrl_common.transition.TRANSITION`` (the one definition of a transition's
fields). Robots of different kinds share one store through
``realrl_common.embodiment.SharedSpace``: states are stored in the shared (layout-aligned,
zero-padded) state, actions as the prefix of the widest action, and each row's
``embodiment`` field says which robot kind wrote it (its index in the space, which the
store's metadata holds under 'space').
"""
from __future__ import annotations

from typing import Mapping

from realrl_common.embodiment import SharedSpace, describe_robot  # noqa: F401 (re-exported)
from realrl_common.transition import (
    EMBODIMENT,
    EMBODIMENT_DTYPE,
    TRANSITION,
    Dims,
    TransitionSchema,
)


def transition_schema(desc: dict, fields: TransitionSchema = TRANSITION) -> dict:
    """Field name -> (shape, dtype) for one robot description (no embodiment field)."""
    return fields.store_fields(Dims.of(desc))


def store_dims(descriptions: Mapping[str, dict]) -> tuple[Dims, SharedSpace]:
    """The store's dimensions for all these robots, and their shared space.

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
    return Dims(space.state_dim, space.action_dim, tuple(cameras), size), space


def store_schema(descriptions: Mapping[str, dict],
                 fields: TransitionSchema = TRANSITION) -> tuple[dict, SharedSpace]:
    """The fields of a store for all these robots (see ``store_dims``), and their space."""
    dims, space = store_dims(descriptions)
    schema = fields.store_fields(dims)
    schema[EMBODIMENT] = ((), EMBODIMENT_DTYPE)
    return schema, space
