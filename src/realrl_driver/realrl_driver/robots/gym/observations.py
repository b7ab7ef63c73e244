"""How a gymnasium observation space becomes a robot's state vector and cameras (no ROS).

A Box is the state, flattened, with one layout slice 'obs'. A Dict (nested Dicts too, the form
manipulation suites use) is split by entry, in the space's key order:

- an image entry, a uint8 Box of shape (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4, is a
  camera named after its key path ('/' and other non-alphanumerics become '_');
- every other Box entry is flattened into the state, with a layout slice named after its key
  path joined by '/' (e.g. 'robot0_eef_pos', 'observation', 'desired_goal').

Any other space (Discrete, Tuple, ...) is refused with the key that holds it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class ObservationSplit:
    """Where a space's state entries go in the state vector, and which entries are images."""

    state: tuple[tuple[KeyPath, int, int], ...]
    """(key path, start, stop) of each state entry in the state vector."""
    cameras: dict[str, tuple[KeyPath, str]]
    """camera name -> (key path, layout: 'hw', 'hwc' or 'chw') of each image entry."""

    @property
    def state_dim(self) -> int:
        return self.state[-1][2] if self.state else 0

    @property
    def layout(self) -> dict[str, tuple[int, int]]:
        """The robot's observation_layout: named [start, stop) slices of the state."""
        return {('/'.join(path) or 'obs'): (a, b) for path, a, b in self.state}


def _image_layout(box: spaces.Box) -> str | None:
    shape = box.shape
    if box.dtype != np.uint8 or len(shape) not in (2, 3):
        return None
    if len(shape) == 2:
        return 'hw'
    if shape[2] in (1, 3, 4):
        return 'hwc'
    return 'chw' if shape[0] in (1, 3, 4) else None


def split_space(space: spaces.Space, env_id: str) -> ObservationSplit:
    """The split of `space`; ValueError naming the entry when one cannot be used."""
    if isinstance(space, spaces.Box):
        return ObservationSplit(state=(((), 0, int(np.prod(space.shape))),), cameras={})
    if not isinstance(space, spaces.Dict):
        raise ValueError(f'{env_id}: observation space {space} is neither a Box nor a Dict of '
                         'Boxes; wrap the environment (e.g. FlattenObservation)')
    state, cameras, start = [], {}, 0
    for path, box in _leaves(space, (), env_id):
        layout = _image_layout(box)
        if layout is not None:
            name = re.sub(r'[^A-Za-z0-9]+', '_', '_'.join(path)).strip('_')
            if not re.fullmatch(r'[A-Za-z][A-Za-z0-9_]*', name) or name in cameras:
                raise ValueError(f'{env_id}: image entry {"/".join(path)!r} gives no usable '
                                 f'camera name ({name!r}); rename the entry')
            cameras[name] = (path, layout)
        else:
            size = int(np.prod(box.shape))
            state.append((path, start, start + size))
            start += size
    if not state:
        raise ValueError(f'{env_id}: observation space {space} has no state entry (only '
                         'images); the policy needs at least one non-image Box entry')
    return ObservationSplit(state=tuple(state), cameras=cameras)


def _leaves(space: spaces.Dict, prefix: KeyPath, env_id: str):
    for key, sub in space.spaces.items():
        path = (*prefix, str(key))
        if isinstance(sub, spaces.Dict):
            yield from _leaves(sub, path, env_id)
        elif isinstance(sub, spaces.Box):
            yield path, sub
        else:
            raise ValueError(f'{env_id}: observation entry {"/".join(path)!r} is {sub}; only '
                             'Box entries (state or uint8 images) and Dicts of them are read')


def _entry(obs, path: KeyPath):
    for key in path:
        obs = obs[key]
    return obs


def state_of(obs, split: ObservationSplit) -> np.ndarray:
    """The float32 state vector of one observation."""
    if len(split.state) == 1 and not split.state[0][0]:
        return np.asarray(obs, dtype=np.float32).reshape(-1)
    return np.concatenate([np.asarray(_entry(obs, path), dtype=np.float32).reshape(-1)
                           for path, _, _ in split.state])


def image_of(obs, split: ObservationSplit, camera: str) -> np.ndarray:
    """The camera's image in one observation as H x W x 3 uint8."""
    path, layout = split.cameras[camera]
    image = np.asarray(_entry(obs, path), dtype=np.uint8)
    if layout == 'chw':
        image = image.transpose(1, 2, 0)
    if layout == 'hw':
        image = image[..., None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])
