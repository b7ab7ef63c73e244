"""One state vector, one actor input and one action vector for robots of several kinds.

Pure numpy (no ROS, no torch): the replay node pads what it stores with it, the learner builds
its batches with it, and the policy pads observations and cuts actions with it. All three
build it from the same robot descriptions (``describe_robot`` dicts), and the learner ships
it in every weights blob, so they cannot disagree.

- **Embodiment.** Robots with the same key ``kind/state_dim/action_dim`` share one
  embodiment; they must agree on the state layout and the action bounds.
- **State: layout-aligned padding.** The shared state is the union of the robots' named
  layout slices, each as wide as its widest robot, in order of first appearance (robots in
  sorted id order). A robot's slice lands left-aligned in the shared slice of the same name;
  the rest is zero. So 'ee_to_target' sits at the same place for a 7-joint and a 6-joint arm,
  and only 'joint_pos'/'joint_vel' carry a zero. A robot whose layout does not name every
  state value exactly once is taken as one slice named 'state'.
- **Actor input.** The padded state, plus a one-hot of the embodiment when there is more
  than one (with a single embodiment the input is the robot's own state, unchanged).
- **Actions: prefix and mask.** A robot's action is the first ``action_dim`` values of the
  shared action (width: the largest action_dim). The learner masks the rest (no log-prob,
  zero in the critic's input); the policy drops it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from realrl_common.convert import from_f32

WHOLE_STATE = 'state'


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


def embodiment_key(desc: Mapping) -> str:
    """The description's embodiment key, kind/state_dim/action_dim."""
    return f"{desc.get('kind') or 'robot'}/{int(desc['state_dim'])}/{int(desc['action_dim'])}"


def tiled_layout(desc: Mapping) -> tuple[tuple[str, int, int], ...]:
    """The description's state layout as (name, start, stop) in state order, if it names
    every state value exactly once; otherwise one slice 'state' over the whole state."""
    n = int(desc['state_dim'])
    slices = sorted((int(a), int(b), str(name))
                    for name, (a, b) in dict(desc.get('state_layout') or {}).items())
    at = 0
    for a, b, _ in slices:
        if a != at or b <= a:
            break
        at = b
    else:
        if at == n and slices:
            return tuple((name, a, b) for a, b, name in slices)
    return ((WHOLE_STATE, 0, n),)


@dataclass(frozen=True)
class Embodiment:
    """Robots that share a key: their state layout and action bounds."""

    key: str
    """kind/state_dim/action_dim."""
    state_dim: int
    action_dim: int
    layout: tuple[tuple[str, int, int], ...]
    """(name, start, stop) slices of the robot's own state, in state order."""
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]

    @classmethod
    def of(cls, desc: Mapping) -> 'Embodiment':
        low = tuple(float(x) for x in desc['action_low'])
        high = tuple(float(x) for x in desc['action_high'])
        if len(low) != int(desc['action_dim']) or len(high) != int(desc['action_dim']):
            raise ValueError(f"robot {desc.get('robot_id')!r}: action bounds have "
                             f'{len(low)}/{len(high)} values, action_dim is {desc["action_dim"]}')
        return cls(embodiment_key(desc), int(desc['state_dim']), int(desc['action_dim']),
                   tiled_layout(desc), low, high)


class SharedSpace:
    """The shared state/action space of a set of embodiments (see the module docstring)."""

    def __init__(self, embodiments: list[Embodiment]):
        if not embodiments:
            raise ValueError('a shared space needs at least one robot description')
        keys = [e.key for e in embodiments]
        if len(set(keys)) != len(keys):
            raise ValueError(f'embodiments {keys} are not unique')
        self.embodiments = tuple(embodiments)
        widths: dict[str, int] = {}
        for e in embodiments:
            for name, a, b in e.layout:
                widths[name] = max(widths.get(name, 0), b - a)
        self.layout: dict[str, tuple[int, int]] = {}
        at = 0
        for name, width in widths.items():
            self.layout[name] = (at, at + width)
            at += width
        self.state_dim = at
        self.action_dim = max(e.action_dim for e in embodiments)
        self.onehot_dim = len(embodiments) if len(embodiments) > 1 else 0
        self.obs_dim = self.state_dim + self.onehot_dim
        k, a = len(embodiments), self.action_dim
        self._state_index = [np.concatenate([np.arange(b - s) + self.layout[name][0]
                                             for name, s, b in e.layout]) for e in embodiments]
        self.mask = np.zeros((k, a), np.float32)
        self.low = -np.ones((k, a), np.float32)
        self.high = np.ones((k, a), np.float32)
        for i, e in enumerate(embodiments):
            self.mask[i, :e.action_dim] = 1.0
            self.low[i, :e.action_dim] = e.action_low
            self.high[i, :e.action_dim] = e.action_high
        self._onehot = np.eye(k, dtype=np.float32)[:, :self.onehot_dim]

    # -- building -----------------------------------------------------------------------
    @classmethod
    def from_descriptions(cls, descriptions: Mapping[str, Mapping]) -> 'SharedSpace':
        """From robot id -> description; robots of one embodiment must agree."""
        by_key: dict[str, tuple[str, Embodiment]] = {}
        for rid in sorted(descriptions):
            e = Embodiment.of(descriptions[rid])
            seen = by_key.get(e.key)
            if seen is None:
                by_key[e.key] = (rid, e)
            elif seen[1] != e:
                raise ValueError(
                    f'robots {seen[0]} and {rid} are both {e.key} but differ in state layout '
                    f'or action bounds; give one of them another kind, or the same settings')
        return cls([e for _, e in by_key.values()])

    def to_json(self) -> dict:
        return {'embodiments': [{'key': e.key, 'state_dim': e.state_dim,
                                 'action_dim': e.action_dim,
                                 'layout': [list(s) for s in e.layout],
                                 'action_low': list(e.action_low),
                                 'action_high': list(e.action_high)}
                                for e in self.embodiments]}

    @classmethod
    def from_json(cls, data: Mapping) -> 'SharedSpace':
        try:
            return cls([Embodiment(d['key'], int(d['state_dim']), int(d['action_dim']),
                                   tuple((str(n), int(a), int(b)) for n, a, b in d['layout']),
                                   tuple(float(x) for x in d['action_low']),
                                   tuple(float(x) for x in d['action_high']))
                        for d in data['embodiments']])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f'shared space description is unreadable: {e!r}') from None

    # -- lookups ------------------------------------------------------------------------
    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.embodiments)

    def index(self, desc: Mapping) -> int:
        """The embodiment index of a robot description; ValueError if this space does not
        hold its embodiment exactly."""
        e = Embodiment.of(desc)
        for i, known in enumerate(self.embodiments):
            if known.key == e.key:
                if known != e:
                    raise ValueError(f"robot {desc.get('robot_id')!r} ({e.key}) differs in state "
                                     'layout or action bounds from the robots the weights were '
                                     'trained for')
                return i
        raise ValueError(f"robot {desc.get('robot_id')!r} is {e.key}; this space holds "
                         f'{list(self.keys)}: add the robot to the replay node and learner')

    # -- padding ------------------------------------------------------------------------
    def pad_state(self, e: int, state: np.ndarray) -> np.ndarray:
        """The robot's state (embodiment e) in the shared layout."""
        state = np.asarray(state, np.float32).reshape(-1)
        idx = self._state_index[e]
        if state.size != idx.size:
            raise ValueError(f'state has {state.size} values; {self.embodiments[e].key} has '
                             f'{idx.size}')
        out = np.zeros(self.state_dim, np.float32)
        out[idx] = state
        return out

    def unpad_state(self, e: int, padded: np.ndarray) -> np.ndarray:
        return np.asarray(padded, np.float32)[..., self._state_index[e]]

    def pad_action(self, e: int, action: np.ndarray) -> np.ndarray:
        action = np.asarray(action, np.float32).reshape(-1)
        if action.size != self.embodiments[e].action_dim:
            raise ValueError(f'action has {action.size} values; {self.embodiments[e].key} has '
                             f'{self.embodiments[e].action_dim}')
        out = np.zeros(self.action_dim, np.float32)
        out[:action.size] = action
        return out

    def actor_obs(self, padded_states: np.ndarray, e: np.ndarray | int) -> np.ndarray:
        """Actor input [N, obs_dim] from padded states [N, state_dim] and embodiments [N]."""
        padded_states = np.asarray(padded_states, np.float32)
        if not self.onehot_dim:
            return padded_states
        onehot = self._onehot[np.asarray(e, np.int64)]
        return np.concatenate([padded_states, np.broadcast_to(
            onehot, (*padded_states.shape[:-1], self.onehot_dim))], axis=-1)

    def to_unit(self, actions: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Padded robot-unit actions [N, A] -> [-1, 1], padding 0."""
        e = np.asarray(e, np.int64)
        low, high = self.low[e], self.high[e]
        u = 2.0 * (np.asarray(actions, np.float32) - low) / np.maximum(high - low, 1e-12) - 1.0
        return np.clip(u, -1.0, 1.0) * self.mask[e]
