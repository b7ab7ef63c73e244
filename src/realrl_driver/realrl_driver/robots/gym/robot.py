"""Any gymnasium environment with Box observation and action spaces as a robot (no ROS).

The state is the observation flattened to float32, with one layout slice 'obs'. Action
bounds come from the action space (they must be finite). The environment scores itself:
every `apply` keeps the step's reward, terminated and truncated (and success from an info
key), which the episode loop reads through `outcome()` when the driver is configured with
`reward_source: env`. Camera 'env' is the environment's own rgb_array rendering.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

os.environ.setdefault('MUJOCO_GL', 'egl')  # gymnasium's MuJoCo envs render offscreen

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402

from realrl_driver.core.episode_loop import Label  # noqa: E402
from realrl_driver.core.safety import checked_action  # noqa: E402

ENV_CAMERA = 'env'


@dataclass(frozen=True)
class GymEnvConfig:
    """Which gymnasium environment the robot is, and how its steps are read."""

    env_id: str = 'Pendulum-v1'
    """Registered gymnasium id, e.g. Pendulum-v1, InvertedPendulum-v5, Reacher-v5."""
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
        try:
            gymnasium.spec(self.env_id)
        except gymnasium.error.Error as e:
            raise ValueError(f'env_id {self.env_id!r} is not a registered gymnasium '
                             f'environment ({e}); e.g. Pendulum-v1 or Reacher-v5') from None
        if self.kind and not re.fullmatch(r'[A-Za-z][A-Za-z0-9_]*', self.kind):
            raise ValueError(f'kind must be a name of letters, digits and _, got {self.kind!r}')

    @property
    def robot_kind(self) -> str:
        return self.kind or 'gym_' + re.sub(r'[^A-Za-z0-9]+', '_', self.env_id).strip('_')


class GymRobot:
    """A gymnasium environment behind the `Robot` protocol (and `outcome()` for its labels).

    Not thread-safe, like the environment it wraps.
    """

    action_units = 'native units of the environment action space'

    def __init__(self, cfg: GymEnvConfig, cameras: tuple[str, ...] = (),
                 image_size: tuple[int, int] = (128, 128)):
        unknown = sorted(set(cameras) - {ENV_CAMERA})
        if unknown:
            raise ValueError(f'cameras: {unknown} unknown; a gymnasium robot has one camera, '
                             f'{ENV_CAMERA!r} (the environment rendering)')
        self.cfg = cfg
        self.kind = cfg.robot_kind
        kwargs = dict(cfg.kwargs)
        if cameras:
            kwargs.setdefault('render_mode', 'rgb_array')
        try:
            self.env = gymnasium.make(cfg.env_id, **kwargs)
        except (TypeError, gymnasium.error.Error) as e:
            raise ValueError(f'gymnasium.make({cfg.env_id!r}, **kwargs) failed: {e}; fix '
                             f'env.kwargs') from e
        except ImportError as e:
            raise RuntimeError(f'{cfg.env_id} needs a package that is not installed: {e}') from e
        obs_space, act_space = self.env.observation_space, self.env.action_space
        if not isinstance(obs_space, spaces.Box):
            self.env.close()
            raise ValueError(f'{cfg.env_id}: observation space {obs_space} is not a Box; wrap '
                             'the environment (e.g. FlattenObservation) and register that id')
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
        self.state_dim = int(np.prod(obs_space.shape))
        self.observation_layout = {'obs': (0, self.state_dim)}
        self.camera_names = (ENV_CAMERA,) if cameras else ()
        self.capabilities = ('reset', 'env_reward') + (('cameras',) if cameras else ())
        self._outcome: Label | None = None
        self._state: np.ndarray | None = None

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
        frame = np.asarray(self.env.render(), dtype=np.uint8)
        if frame.shape[:2] != (height, width):
            import cv2
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame[..., :3])

    def close(self) -> None:
        self.env.close()

    def _flat(self, obs) -> np.ndarray:
        state = np.asarray(obs, dtype=np.float32).reshape(-1)
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
