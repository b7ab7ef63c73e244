"""Peg insertion on the simulated panda7 arm (no ROS imports).

The arm holds a peg (fixed in its hand, `arm_models/panda7_peg.xml`) over a block with a
square hole 2.5 mm wider than the peg on every side. Every reset draws a new position and
turn of the block, and a new start of the peg above it (seeded: same seed, same episode).
The episode succeeds when the peg's tip is inside the hole to `insert_depth_m`.

Actions are end-effector displacements (x, y, z) in units of `max_ee_step_m`, clipped to
[-1, 1] and to the workspace, turned into joint targets by inverse kinematics that also
holds the hand pointing down (the peg vertical). The state is proprioception only: joint
positions and velocities, the peg tip's position and the force on the hand; the hole is
not in it (a policy finds it in the camera images, 'front' and 'wrist'). The robot labels
its own steps (``outcome``: reward 1 on success, else 0; or a dense distance), so the
driver runs it with ``reward_source: env``, or a reward node (e.g. a learned success
classifier) labels it with ``reward_source: node``.

The defaults here are the wide task (hole +-5 x 8 cm, 2 cm steps). ``config/peg_sim.yaml``
narrows it to what RLPD learns from pixels within minutes on 2 CPU cores, without giving the
hole away: hole +-4 cm (still drawn every episode, still 2.5 mm clearance), start +-1.5 cm
and 3-5 cm up, 1.5 cm steps, 30-step episodes, sparse reward. The 'front' camera looks down
at the block from ~45 cm (fovy 28) so that the hole is a few pixels wide at 32x32; the
'wrist' camera sees it up close until the peg covers it.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from realrl_driver.core.episode_loop import Label
from realrl_driver.robots.mujoco_arm.sim import MODELS_DIR, ArmSimConfig, MujocoArmSim, mujoco

PEG_MODEL_PATH = str(MODELS_DIR / 'panda7_peg.xml')
REWARD_MODES = ('sparse', 'dense')


@dataclass(frozen=True)
class PegTaskConfig:
    """The peg-insertion task: hole and start randomisation, success depth, reward, limits."""

    model_path: str = ''
    """MJCF of the arm with its peg and block ('': arm_models/panda7_peg.xml). It must have
    the sites `peg_tip` and `hole_top`, the mocap body `hole` with the geom `hole_bottom`
    (whose x half-size is the hole's half-width) and the sensor `ee_force`."""
    hole_center: tuple[float, ...] = (0.52, 0.0)
    """Centre (x, y in m, world frame) of the area hole positions are drawn from."""
    hole_range_m: tuple[float, ...] = (0.05, 0.08)
    """Half-widths (x, y in m) of that area: every reset draws the hole uniformly in it."""
    hole_yaw_range_rad: float = 0.4
    """Half-width (rad) of the block's random turn about the vertical at every reset (the
    peg is round, so it changes what the cameras see, not how the peg goes in)."""
    start_range_m: tuple[float, ...] = (0.05, 0.08)
    """Half-widths (x, y in m) of the area around hole_center the peg tip starts above
    (drawn independently of the hole)."""
    start_height_m: tuple[float, ...] = (0.05, 0.09)
    """Range (m) of the peg tip's start height above the block's top."""
    insert_depth_m: float = 0.03
    """Success: the peg tip is inside the hole at least this far below the block's top."""
    reward: str = 'sparse'
    """'sparse': 1 on success, else 0; 'dense': minus the distance (m) from the peg tip to
    the inserted position, plus 1 on success."""
    max_ee_step_m: float = 0.02
    """Peg tip displacement (m, per axis and step) commanded by an action component of 1."""
    workspace_low: tuple[float, ...] = (0.35, -0.22, 0.0)
    """Lower corner (x, y, z in m) of the box the peg tip is held in."""
    workspace_high: tuple[float, ...] = (0.70, 0.22, 0.25)
    """Upper corner (x, y, z in m) of that box."""
    home_noise_rad: float = 0.02
    """Half-width of the joint noise at reset, before the arm is put at its start."""

    def __post_init__(self):
        if not self.model_path:
            object.__setattr__(self, 'model_path', PEG_MODEL_PATH)
        for name, n in (('hole_center', 2), ('hole_range_m', 2), ('start_range_m', 2),
                        ('start_height_m', 2), ('workspace_low', 3), ('workspace_high', 3)):
            value = getattr(self, name)
            if len(value) != n or not all(math.isfinite(v) for v in value):
                raise ValueError(f'{name} must have {n} finite values, got {list(value)}')
        if min(self.hole_range_m + self.start_range_m) < 0:
            raise ValueError('hole_range_m and start_range_m must be >= 0, got '
                             f'{list(self.hole_range_m)} and {list(self.start_range_m)}')
        low, high = self.start_height_m
        if not 0 < low <= high:
            raise ValueError(f'start_height_m must be [low, high] with 0 < low <= high, got '
                             f'{list(self.start_height_m)}')
        if not 0 < self.insert_depth_m < 0.045:
            raise ValueError(f'insert_depth_m must be in (0, 0.045) m (the hole is 45 mm '
                             f'deep), got {self.insert_depth_m}')
        if not 0 <= self.hole_yaw_range_rad <= math.pi:
            raise ValueError(f'hole_yaw_range_rad must be in [0, pi], got '
                             f'{self.hole_yaw_range_rad}')
        if self.reward not in REWARD_MODES:
            raise ValueError(f'reward must be one of {list(REWARD_MODES)}, got {self.reward!r}')
        if not 0 < self.max_ee_step_m <= 0.05:
            raise ValueError(f'max_ee_step_m must be in (0, 0.05] m, got {self.max_ee_step_m}')

    def arm_config(self, control_hz: float) -> ArmSimConfig:
        """The arm simulation this task runs on (panda7 with the peg, the tip as end
        effector, the block as the mocap target)."""
        return ArmSimConfig(
            model='panda7', model_path=self.model_path, control_hz=control_hz,
            action_mode='ee_delta', max_ee_step_m=self.max_ee_step_m,
            workspace_low=self.workspace_low, workspace_high=self.workspace_high,
            home_noise_rad=self.home_noise_rad, target_min_distance_m=0.0,
            ee_site='peg_tip', target_body='hole', ik_iterations=3)


class PegInsertionSim(MujocoArmSim):
    """The arm, its peg and the block; the task's reset, state and outcome."""

    START_IK_CALLS = 25
    """Inverse kinematics rounds that put the peg at its start at reset."""

    def __init__(self, task: PegTaskConfig = PegTaskConfig(), control_hz: float = 10.0,
                 seed: int | None = None):
        self.task = task
        super().__init__(task.arm_config(control_hz), seed)
        self.kind = 'mujoco_peg'
        sizes = {'joint_pos': self.model.nq, 'joint_vel': self.model.nv, 'ee_pos': 3,
                 'ee_force': 3}
        self.observation_layout, start = {}, 0
        for name, size in sizes.items():
            self.observation_layout[name] = (start, start + size)
            start += size
        self.state_dim = start

    @functools.cached_property
    def _ids(self) -> dict:
        """Model addresses the task reads (looked up once; reset runs before __init__ ends)."""
        m = self.model
        names = {'tip': (mujoco.mjtObj.mjOBJ_SITE, 'peg_tip'),
                 'top': (mujoco.mjtObj.mjOBJ_SITE, 'hole_top'),
                 'bottom': (mujoco.mjtObj.mjOBJ_GEOM, 'hole_bottom'),
                 'force': (mujoco.mjtObj.mjOBJ_SENSOR, 'ee_force')}
        ids = {key: self._lookup(kind, name, 'task element') for key, (kind, name) in
               names.items()}
        data = mujoco.MjData(m)
        data.qpos[:] = self.cfg.home_qpos
        mujoco.mj_kinematics(m, data)
        return {'tip': ids['tip'], 'top': ids['top'],
                'half_width': float(m.geom_size[ids['bottom'], 0]),
                'force_adr': int(m.sensor_adr[ids['force']]),
                'down': data.site_xmat[ids['tip']].reshape(3, 3).copy()}

    # ------------------------------------------------------------------ task
    @property
    def hole_top(self) -> np.ndarray:
        """Centre of the hole's mouth (m, world frame), a copy; privileged (not in the state)."""
        return self.data.site_xpos[self._ids['top']].copy()

    @property
    def hole_half_width(self) -> float:
        """Half-width (m) of the square hole."""
        return self._ids['half_width']

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode: a new hole pose, the peg tip above the block at a random
        start; returns the state. A seed restarts the random stream; None continues it."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        m, d, t, rng = self.model, self.data, self.task, self._rng
        mujoco.mj_resetData(m, d)
        noise = rng.uniform(-self.cfg.home_noise_rad, self.cfg.home_noise_rad, m.nq)
        d.qpos[:] = np.clip(self._home + noise, self._q_low, self._q_high)
        center = np.asarray(t.hole_center)
        hole = center + rng.uniform(-1, 1, 2) * np.asarray(t.hole_range_m)
        d.mocap_pos[self._mocap] = (hole[0], hole[1], 0.0)
        mujoco.mj_kinematics(m, d)
        start_xy = center + rng.uniform(-1, 1, 2) * np.asarray(t.start_range_m)
        start_z = self.hole_top[2] + rng.uniform(*t.start_height_m)
        start = np.clip(np.array([start_xy[0], start_xy[1], start_z]), self._ws_low,
                        self._ws_high)
        yaw = rng.uniform(-t.hole_yaw_range_rad, t.hole_yaw_range_rad)
        d.mocap_quat[self._mocap] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        for _ in range(self.START_IK_CALLS):
            d.qpos[:] = self._joint_targets(start)
        d.ctrl[:] = d.qpos
        mujoco.mj_forward(m, d)
        return self.observe()

    def observe(self) -> np.ndarray:
        """The state: joint positions and velocities, peg tip position, hand force."""
        d, ids = self.data, self._ids
        force = d.sensordata[ids['force_adr']:ids['force_adr'] + 3]
        return np.concatenate([d.qpos, d.qvel, d.site_xpos[ids['tip']], force]).astype(
            np.float32)

    def inserted(self) -> bool:
        """Whether the peg tip is inside the hole, at least insert_depth_m deep."""
        tip, top = self.ee_pos, self.hole_top
        hole_frame = self.data.site_xmat[self._ids['top']].reshape(3, 3)
        local = hole_frame.T @ (tip - top)  # the tip in the block's frame
        inside = np.all(np.abs(local[:2]) <= self.hole_half_width)
        return bool(inside and tip[2] <= top[2] - self.task.insert_depth_m)

    def outcome(self) -> Label:
        """The label of the current state (the driver's ``reward_source: env``)."""
        success = self.inserted()
        if self.task.reward == 'sparse':
            reward = 1.0 if success else 0.0
        else:
            goal = self.hole_top - np.array([0.0, 0.0, self.task.insert_depth_m])
            reward = -float(np.linalg.norm(self.ee_pos - goal)) + (1.0 if success else 0.0)
        return Label(reward, success, terminated=success)

    # ------------------------------------------------------------- kinematics
    def _joint_targets(self, desired_ee: np.ndarray) -> np.ndarray:
        """Joint positions that put the peg tip at `desired_ee` with the hand pointing down
        as at home (damped least squares on the tip's position and orientation)."""
        m, s, cfg = self.model, self._scratch, self.cfg
        site, down = self._ids['tip'], self._ids['down']
        s.qpos[:] = self.data.qpos
        jac = np.zeros((6, m.nv))
        eye6 = np.eye(6)
        lam2 = cfg.ik_damping ** 2
        for i in range(cfg.ik_iterations):
            mujoco.mj_kinematics(m, s)
            mujoco.mj_comPos(m, s)
            mujoco.mj_jacSite(m, s, jac[:3], jac[3:], site)
            rot = s.site_xmat[site].reshape(3, 3)
            turn = 0.5 * sum(np.cross(rot[:, k], down[:, k]) for k in range(3))
            err = np.concatenate([desired_ee - s.site_xpos[site], turn])
            inv = np.linalg.solve(jac @ jac.T + lam2 * eye6, eye6)
            dq = jac.T @ (inv @ err)
            if i == 0 and cfg.nullspace_gain > 0:
                task = jac.T @ inv @ jac
                dq += (np.eye(m.nv) - task) @ (cfg.nullspace_gain * (self._home - s.qpos))
            s.qpos[:] = np.clip(s.qpos + dq, self._q_low, self._q_high)
        return s.qpos.copy()
