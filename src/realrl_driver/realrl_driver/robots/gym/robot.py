"""Any gymnasium environment with a Box action space as a robot (no ROS).

The observation space is a Box (the state, flattened to float32, one layout slice 'obs') or a
Dict of Boxes: state entries concatenated into the state, uint8 image entries as cameras named
after their keys (`observations.py`). An environment registered by another package is named
``module:EnvId``: the module is imported (it registers the id), then gymnasium makes it. Action
bounds come from the action space (they must be finite). The environment scores itself:
every `apply` keeps the step's reward, terminated and truncated (and success from an info
key), which the episode loop reads through `outcome()` when the driver is configured with
`reward_source: env`. Camera 'env' is the environment's own rgb_array rendering.
"""
from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

os.environ.setdefault('MUJOCO_GL', 'egl')  # gymnasium's MuJoCo envs render offscreen

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402

from realrl_driver.cameras.base import resize_rgb  # noqa: E402
from realrl_driver.core.episode_loop import Label  # noqa: E402
from realrl_driver.core.safety import checked_action  # noqa: E402
from realrl_driver.robots.gym.observations import (  # noqa: E402
    image_of,
    split_space,
    state_of,
)

ENV_CAMERA = 'env'


@dataclass(frozen=True)
class GymEnvConfig:
    """Which gymnasium environment the robot is, and how its steps are read."""

    env_id: str = 'Pendulum-v1'
    """Registered gymnasium id, e.g. Pendulum-v1, InvertedPendulum-v5, Reacher-v5; or
    ``module:EnvId`` for an id that importing ``module`` registers (another package's)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of gymnasium.make, e.g. {g: 9.81} for Pendulum-v1."""
    kind: str = ''
    """Robot kind the driver reports ('': gym_<env_id> with non-alphanumerics as _)."""
    success_key: str = 'is_success'
    """info key read as the step's success (an environment without it never succeeds)."""

    def __post_init__(self):
        if not isinstance(self.kwargs, Mapping):
            raise ValueError(f'kwargs must be a mapping of gymnasium.make arguments, got '
                             f'{self.kwargs!r}')
        module, _, name = self.env_id.rpartition(':')
        if module:
            try:
                importlib.import_module(module)
            except ImportError as e:
                raise ValueError(f'env_id {self.env_id!r}: module {module!r} cannot be imported '
                                 f'({e}); install the package that registers {name!r}') from None
        try:
            gymnasium.spec(name)
        except gymnasium.error.Error as e:
            where = f'importing {module!r} registers no' if module else 'is not a registered'
            raise ValueError(f'env_id {self.env_id!r} {where} gymnasium environment {name!r} '
                             f'({e}); e.g. Pendulum-v1, Reacher-v5 or my_pkg:MyEnv-v0') from None
        if self.kind and not re.fullmatch(r'[A-Za-z][A-Za-z0-9_]*', self.kind):
            raise ValueError(f'kind must be a name of letters, digits and _, got {self.kind!r}')

    @property
    def robot_kind(self) -> str:
        name = self.env_id.rpartition(':')[2]
        return self.kind or 'gym_' + re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')


class GymRobot:
    """A gymnasium environment behind the `Robot` protocol (and `outcome()` for its labels).

    Not thread-safe, like the environment it wraps.
    """

    action_units = 'native units of the environment action space'

    def __init__(self, cfg: GymEnvConfig, cameras: tuple[str, ...] = (),
                 image_size: tuple[int, int] = (128, 128)):
        self.cfg = cfg
        self.kind = cfg.robot_kind
        kwargs = dict(cfg.kwargs)
        if ENV_CAMERA in cameras:
            kwargs.setdefault('render_mode', 'rgb_array')
        try:
            self.env = gymnasium.make(cfg.env_id, **kwargs)
        except (TypeError, gymnasium.error.Error) as e:
            raise ValueError(f'gymnasium.make({cfg.env_id!r}, **kwargs) failed: {e}; fix '
                             f'env.kwargs') from e
        except ImportError as e:
            raise RuntimeError(f'{cfg.env_id} needs a package that is not installed: {e}') from e
        obs_space, act_space = self.env.observation_space, self.env.action_space
        try:
            self._split = split_space(obs_space, cfg.env_id)
        except ValueError:
            self.env.close()
            raise
        known = (ENV_CAMERA, *self._split.cameras)
        unknown = sorted(set(cameras) - set(known))
        if unknown:
            self.env.close()
            raise ValueError(f'cameras: {unknown} unknown; this gymnasium robot has '
                             f'{list(known)} ({ENV_CAMERA!r}: the environment rendering, the '
                             'others: image entries of its observations)')
        if not isinstance(act_space, spaces.Box):
            self.env.close()
            raise ValueError(f'{cfg.env_id}: action space {act_space} is not a Box; only '
                             'continuous actions can be driven')
        low = np.asarray(act_space.low, np.float64).reshape(-1)
        high = np.asarray(act_space.high, np.float64).reshape(-1)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            self.env.close()
            raise ValueError(f'{cfg.env_id}: action bounds {low}..{high} are not finite; the '
                             'policy needs finite bounds (wrap it with RescaleAction)')
        self._act_shape = act_space.shape
        self._act_dtype = act_space.dtype
        self.action_low = low.astype(np.float32)
        self.action_high = high.astype(np.float32)
        self.action_dim = int(low.size)
        self.state_dim = self._split.state_dim
        self.observation_layout = self._split.layout
        self.camera_names = tuple(c for c in known if c in cameras)
        self.capabilities = ('reset', 'env_reward') + (('cameras',) if cameras else ())
        self._outcome: Label | None = None
        self._state: np.ndarray | None = None
        self._obs = None

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.env.reset(seed=seed)
        self._outcome = None
        self._state = self._flat(obs)
        return self._state

    def apply(self, action: np.ndarray) -> np.ndarray:
        """One environment step; the reward and the episode's end are kept for outcome()."""
        a = checked_action(action, self.action_dim)
        a = np.clip(a, self.action_low, self.action_high)
        obs, reward, terminated, truncated, info = self.env.step(
            a.astype(self._act_dtype).reshape(self._act_shape))
        self._outcome = Label(float(reward), bool(info.get(self.cfg.success_key, False)),
                              bool(terminated), bool(truncated))
        self._state = self._flat(obs)
        return self._state

    def outcome(self) -> Label:
        """Reward, success, terminated and truncated of the last apply()."""
        if self._outcome is None:
            raise RuntimeError('outcome() before any apply() of this episode')
        return self._outcome

    def hold(self) -> None:
        """Nothing to do: a simulated environment moves only when it is stepped."""

    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        if camera not in self.camera_names:
            raise ValueError(f'unknown camera {camera!r}; known: {list(self.camera_names)} '
                             f'(set cameras: [{ENV_CAMERA}] to render the environment)')
        if camera == ENV_CAMERA:
            frame = np.ascontiguousarray(np.asarray(self.env.render(), dtype=np.uint8)[..., :3])
        else:
            if self._obs is None:
                raise RuntimeError(f'render({camera!r}) before reset(): no observation yet')
            frame = image_of(self._obs, self._split, camera)
        return resize_rgb(frame, width, height)

    def close(self) -> None:
        self.env.close()

    def _flat(self, obs) -> np.ndarray:
        self._obs = obs
        state = state_of(obs, self._split)
        if state.size != self.state_dim:
            raise RuntimeError(f'{self.cfg.env_id} returned {state.size} observation values, '
                               f'its space says {self.state_dim}')
        return state


def make_gym_robot(cfg) -> GymRobot:
    """The robot of a GymDriverConfig (``realrl_driver.robots.gym.config``)."""
    return GymRobot(cfg.env, cfg.cameras, tuple(cfg.image_size))


def main(args=None):
    """The ``gym_driver`` entry point."""
    from realrl_driver.core.driver_node import run_robot  # rclpy only where a node runs
    run_robot('gym', args)


if __name__ == '__main__':
    main()
