"""Observation -> action for one or several robots, with weights swapped between steps.

Before the first weights arrive, actions are drawn uniformly inside each robot's bounds
(version 0): that is SAC's initial exploration, done where the robot is. The actor works
in [-1, 1]; actions are scaled to the robot's bounds on the way out.

Robots of several kinds share the one actor through the shared space its weights carry
(``realrl_common.embodiment``): a robot's state is padded into the shared layout, the
embodiment one-hot is appended, and the robot takes the first action_dim values of the
actor's action.

An image actor (``uses_images``, e.g. 'cnn') also gets the observation's camera frames,
as {'state': vector, 'image_<camera>': HxWx3 uint8}; one with ``encoder.frame_stack`` k > 1
gets each camera's last k frames of the robot's episode (``frame_stack.FrameStacks``, kept
per robot from the observations' episode_id and step).

On a GPU (``device`` 'cuda' or 'cuda:N') the actor lives there twice
(``device_swap.DoubleBufferedActor``): ``prepare``, on the weights loader's thread, copies a
new version into the standby copy on a stream of its own, ``swap`` lets it in once it fits
every robot, and the step after its copies have arrived runs on it (``advance``). A version
of another architecture (or the first) gets a new pair of copies, built on the loader's
thread too. ``actor`` stays the newest version on the CPU: the base a partial version is
applied to, and what the engine asks about the actor (its inputs, its type).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from realrl_common.embodiment import SharedSpace
from realrl_policy.device_swap import DoubleBufferedActor
from realrl_policy.frame_stack import FrameStacks
from realrl_policy.weights_blob import unpack


@dataclass(frozen=True)
class RobotSpace:
    """A served robot's state size and action bounds."""

    state_dim: int
    low: np.ndarray
    high: np.ndarray
    description: dict | None = None
    """The robot's description (describe_robot), needed to serve it with a shared space."""


def to_unit(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Robot-unit action -> [-1, 1] (the actor's range)."""
    return 2.0 * (action - low) / np.maximum(high - low, 1e-12) - 1.0


def from_unit(u: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Action in [-1, 1] (the actor's range) -> robot units, clipped to the bounds."""
    return np.clip(low + 0.5 * (u + 1.0) * (high - low), low, high)


def usable_device(device: str) -> torch.device:
    """``device`` as torch's, or ValueError naming what this machine has instead."""
    if device == 'cpu':
        return torch.device('cpu')
    index = int(device.split(':')[1]) if ':' in device else 0
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not count:
        raise ValueError(f'device {device!r}: torch sees no CUDA device here '
                         f'(torch.cuda.is_available() is False); set device: cpu')
    if not device.startswith('cuda') or index >= count:
        raise ValueError(f'device {device!r}: this machine has {count} CUDA device(s); '
                         f'set device: cpu or cuda:N with N below {count}')
    return torch.device(device)


@dataclass(frozen=True)
class Prepared:
    """A version's actor, built and loaded, waiting to be swapped in (``swap``)."""

    version: int
    actor: torch.nn.Module
    space: SharedSpace | None
    on_device: DoubleBufferedActor | None = None
    """On a GPU: the pair of device copies this version went to (None on the CPU)."""
    staged: bool = False
    """It was staged into the pair's standby copy (else the pair is new and holds it)."""


class InferenceEngine:
    """The current actor and the robots it serves: actions from observations,
    weights swapped in between them."""

    def __init__(self, deterministic: bool = False, seed: int = 0, device: str = 'cpu'):
        self.deterministic = deterministic
        self.device = usable_device(device)
        self.version = 0
        """The version of the weights the next step runs on."""
        self.actor: torch.nn.Module | None = None
        self._on_device: DoubleBufferedActor | None = None   # on a GPU: the actor's copies
        self.space: SharedSpace | None = None
        self.spaces: dict[str, RobotSpace] = {}
        self._embodiment: dict[str, int] = {}
        self.swaps = 0
        self.refused = 0
        self._stacks: FrameStacks | None = None
        self._rng = np.random.default_rng(seed)
        torch.manual_seed(seed)

    def add_robot(self, robot_id: str, state_dim: int, low, high,
                  description: dict | None = None) -> None:
        """Serve robot_id; ValueError (and not served) if the loaded weights cannot."""
        robot = RobotSpace(int(state_dim), np.asarray(low, np.float32),
                           np.asarray(high, np.float32), description)
        if self.actor is not None:
            why, e = self._fit(robot_id, robot, self.actor, self.space)
            if why:
                raise ValueError(f'cannot serve {robot_id} with weights v{self.version}: {why}')
            if e is not None:
                self._embodiment[robot_id] = e
        self.spaces[robot_id] = robot

    def load(self, version: int, blob: bytes) -> str:
        """Swap in the actor of blob if it fits every robot; returns '' or why not."""
        prepared = self.prepare(version, blob)
        return prepared if isinstance(prepared, str) else self.swap(prepared)

    def prepare(self, version: int, blob: bytes, base: torch.nn.Module | None = None,
                checked: bool = False) -> Prepared | str:
        """The actor of blob, built and loaded but not swapped in; or why not.

        The slow part of a new version (parsing the blob, building the actor, copying its
        tensors): it may run on another thread than the inference, which it leaves alone
        (a partial blob goes onto a copy of ``base``, by default the current actor).
        ``checked``: blob was checked whole (assembled from chunks, its CRC-32 right); its
        tensors are then read without the zip's CRC of each."""
        try:
            actor, space_json = unpack(blob, base=base if base is not None else self.actor,
                                       checked=checked)
            space = SharedSpace.from_json(space_json) if space_json is not None else None
        except ValueError as e:
            self.refused += 1
            return str(e)
        if space is not None and (actor.obs_dim, actor.act_dim) != (space.obs_dim,
                                                                     space.action_dim):
            self.refused += 1
            return (f'weights v{version}: actor obs {actor.obs_dim}/act {actor.act_dim} do not '
                    f'match their shared space {space.obs_dim}/{space.action_dim}')
        if self.device.type == 'cpu':
            return Prepared(int(version), actor, space)
        current = self._on_device
        if current is not None:
            try:
                current.stage(actor.state_dict(), int(version), commit=False)
                return Prepared(int(version), actor, space, current, staged=True)
            except ValueError:   # another architecture: new copies
                pass
        return Prepared(int(version), actor, space, self._new_pair(int(version), actor))

    def _new_pair(self, version: int, actor: torch.nn.Module) -> DoubleBufferedActor:
        pair = DoubleBufferedActor(copy.deepcopy(actor), self.device)
        pair.version = version
        return pair

    def swap(self, prepared: Prepared) -> str:
        """Make a prepared actor the current one if it fits every robot ('' or why not).

        Cheap (a few checks and an assignment): call it between two actions."""
        embodiment = {}
        for rid, robot in self.spaces.items():
            why, e = self._fit(rid, robot, prepared.actor, prepared.space)
            if why:
                self.refused += 1
                return f'weights v{prepared.version}: {why}'
            if e is not None:
                embodiment[rid] = e
        self.actor, self.space, self._embodiment = prepared.actor, prepared.space, embodiment
        k = self.frame_stack
        if k > 1 and (self._stacks is None or self._stacks.k != k):
            self._stacks = FrameStacks(k)
        pair = prepared.on_device
        if pair is None:
            self.version = prepared.version
        elif not prepared.staged:
            self._on_device = pair
            self.version = prepared.version
        elif pair is self._on_device:   # in once its copies have arrived (advance)
            pair.commit(prepared.version)
            self.advance()
        else:   # staged into copies a newer architecture has replaced since: rare
            self._on_device = self._new_pair(prepared.version, prepared.actor)
            self.version = prepared.version
        self.swaps += 1
        return ''

    def advance(self) -> tuple[torch.nn.Module | None, int]:
        """The actor the next step runs on and its version. On a GPU, first moves the device
        copy to the committed version if its copies have arrived (never waiting for them),
        so ``version`` may change here: call it between two steps."""
        if self._on_device is None:
            return self.actor, self.version
        actor = self._on_device.active()
        self.version = self._on_device.version
        return actor, self.version

    @staticmethod
    def _fit(rid: str, robot: RobotSpace, actor: torch.nn.Module,
             space: SharedSpace | None) -> tuple[str, int | None]:
        """('', embodiment index or None) if the actor can serve the robot, else (why, None)."""
        if space is None:
            if (actor.obs_dim, actor.act_dim) != (robot.state_dim, robot.low.shape[0]):
                return (f'they are for obs {actor.obs_dim}/act {actor.act_dim}, robot {rid} has '
                        f'{robot.state_dim}/{robot.low.shape[0]}'), None
            return '', None
        if robot.description is None:
            return f'robot {rid} has no description to place it in the shared space', None
        try:
            return '', space.index(robot.description)
        except ValueError as e:
            return str(e), None

    @property
    def wants_images(self) -> bool:
        """Whether the current actor takes camera frames (give them to ``act``)."""
        return bool(getattr(self.actor, 'uses_images', False))

    @property
    def frame_stack(self) -> int:
        """Frames per camera the current actor takes (its encoder's frame_stack; 1 without)."""
        encoder = getattr(getattr(self.actor, 'cfg', None), 'encoder', None)
        return int(getattr(encoder, 'frame_stack', 1)) if self.wants_images else 1

    def act(self, robot_id: str, state: np.ndarray,
            images: dict[str, np.ndarray] | None = None, episode_id: int | None = None,
            step: int = 0) -> tuple[np.ndarray, int]:
        """The robot's action (robot units) and the weights version that chose it; images
        (camera -> HxWx3 uint8 frame) are used by an image actor, ValueError if it lacks
        one of its cameras. An actor with frame_stack k > 1 needs the observation's
        episode_id and step: it gets each camera's last k frames of the episode."""
        robot = self.spaces[robot_id]
        actor, version = self.advance()
        if actor is None:
            u = self._rng.uniform(-1.0, 1.0, size=robot.low.shape[0])
            return from_unit(np.asarray(u, np.float32), robot.low, robot.high), version
        obs = state
        if self.space is not None:
            e = self._embodiment[robot_id]
            obs = self.space.actor_obs(self.space.pad_state(e, state), e)
        if self.wants_images:
            if self._stacks is not None and self.frame_stack > 1:
                if episode_id is None:
                    raise ValueError(f'the actor stacks {self.frame_stack} frames per camera: '
                                     "give act() the observation's episode_id and step")
                images = self._stacks.stack(robot_id, int(episode_id), int(step), images or {})
            obs = {'state': obs, **{f'image_{cam}': f for cam, f in (images or {}).items()}}
        u = actor.act(obs, deterministic=self.deterministic)[:robot.low.shape[0]]
        return from_unit(np.asarray(u, np.float32), robot.low, robot.high), version

    def actor_input(self, robot_id: str, state: np.ndarray) -> np.ndarray:
        """The loaded actor's input for robot_id's state: the state itself, or padded into
        the shared space with the embodiment one-hot (as ``act`` builds it)."""
        if self.space is None:
            return np.asarray(state, np.float32)
        e = self._embodiment[robot_id]
        return self.space.actor_obs(self.space.pad_state(e, state), e)
