"""MuJoCo simulation of a hinge arm doing reach-to-target (no ROS imports).

One class drives any arm whose MJCF has hinge joints only, one position actuator per joint
(in joint order), an end-effector site and a mocap target body. `ARM_MODELS` names the
arms that ship with realrl: the small 4-joint `reach_arm`, the Panda-like 7-DoF `panda7` and
the UR5e-like 6-DoF `ur5e6`; each brings its MJCF, home pose and a workspace that fits it.

Two action modes. 'ee_delta' (default): an end-effector Cartesian displacement; each control
step turns it into joint position targets with damped least squares on the ee site
Jacobian. 'joint_delta': a displacement of every joint's position target (one value per
joint, so its length is the arm's number of joints). Either way the physics then steps
for one control period. The state vector is float32 with the named slices of
`MujocoArmSim.observation_layout`.
"""

import math
import os
from dataclasses import dataclass
from pathlib import Path

# The GL backend is chosen when mujoco is imported; default to headless EGL unless the
# user already picked one (osmesa for software rendering, glfw with a display).
os.environ.setdefault('MUJOCO_GL', 'egl')

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from realrl_driver.core.safety import checked_action  # noqa: E402

MODELS_DIR = Path(__file__).resolve().parent / 'arm_models'
DEFAULT_MODEL_PATH = str(MODELS_DIR / 'reach_arm.xml')
ACTION_MODES = ('ee_delta', 'joint_delta')

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class ArmModel:
    """An arm that ships with realrl, and the task defaults that fit its size."""

    file: str
    """MJCF file name in arm_models/."""
    kind: str
    """The robot kind its driver reports (RobotDescription.kind)."""
    home_qpos: tuple[float, ...]
    """Joint positions (rad) at reset."""
    workspace_low: Vec3
    """Lower corner of the reach box (m, world frame); holds the home end-effector position."""
    workspace_high: Vec3
    """Upper corner of the reach box (m, world frame)."""


ARM_MODELS = {
    'reach_arm': ArmModel('reach_arm.xml', 'mujoco_arm', (0.0, 0.3, 1.9, 0.94),
                          (0.18, -0.20, 0.06), (0.45, 0.20, 0.30)),
    # Franka's 'ready' pose, hand pointing down.
    'panda7': ArmModel('panda7.xml', 'mujoco_panda7',
                       (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785),
                       (0.25, -0.25, 0.10), (0.62, 0.25, 0.56)),
    # Upper arm up, forearm forward, tool down.
    'ur5e6': ArmModel('ur5e6.xml', 'mujoco_ur5e6',
                      (0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0),
                      (0.30, -0.12, 0.10), (0.62, 0.38, 0.52)),
}


@dataclass(frozen=True)
class ArmSimConfig:
    """The simulated arm: model, control rate, action mode, workspace and IK."""

    model: str = 'reach_arm'
    """Which arm, a key of ARM_MODELS: 'reach_arm' (4 joints), 'panda7' (Panda-like, 7 joints)
    or 'ur5e6' (UR5e-like, 6 joints). It supplies model_path, home_qpos and the workspace
    where those are left empty."""
    model_path: str = ''
    """MJCF file of the arm ('': the model's own). It must define the `ee_site` site, the
    `target_body` mocap body, one position actuator per hinge joint, and the cameras."""
    control_hz: float = 20.0
    """Rate of `apply` calls; 1 / control_hz must be a whole number of model timesteps."""
    action_mode: str = 'ee_delta'
    """'ee_delta': 3 values, an end-effector displacement (x, y, z) through inverse
    kinematics; 'joint_delta': one value per joint, a displacement of its position target."""
    max_ee_step_m: float = 0.03
    """End-effector displacement (m, per axis) commanded by an action component of 1
    ('ee_delta')."""
    max_joint_step_rad: float = 0.05
    """Joint target displacement (rad) commanded by an action component of 1
    ('joint_delta')."""
    workspace_low: tuple[float, ...] = ()
    """Lower corner (x, y, z in m, world frame) of the box targets are drawn from and, with
    'ee_delta', the end effector is held in ([]: the model's)."""
    workspace_high: tuple[float, ...] = ()
    """Upper corner (x, y, z in m, world frame) of the workspace box ([]: the model's)."""
    home_qpos: tuple[float, ...] = ()
    """Joint positions (rad) at reset, before noise; one per hinge joint, in model order
    ([]: the model's home)."""
    home_noise_rad: float = 0.05
    """Half-width of the uniform noise added to each home joint position at reset."""
    target_min_distance_m: float = 0.10
    """Targets are redrawn until they are at least this far from the end effector at reset."""
    ee_site: str = 'ee'
    """Name of the end-effector site in the model."""
    target_body: str = 'target'
    """Name of the mocap body that marks the target."""
    ik_damping: float = 0.03
    """Damping (m) of the damped-least-squares inverse kinematics; larger is smoother
    near singularities but tracks less exactly."""
    ik_iterations: int = 3
    """Damped-least-squares iterations per control step."""
    nullspace_gain: float = 0.1
    """Pull (per control step, 0..1) of the redundant joint motion toward home_qpos;
    keeps the arm's posture from drifting. 0 disables it."""

    def __post_init__(self):
        self._take_model_defaults()
        self._check_action()
        self._check_workspace()
        self._check_ik()

    def _take_model_defaults(self):
        """Fill the empty fields from the model's preset; check that the MJCF exists."""
        preset = ARM_MODELS.get(self.model)
        if preset is None:
            raise ValueError(f'model {self.model!r} is not a known arm; known: '
                             f'{sorted(ARM_MODELS)} (or give model_path for your own MJCF)')
        # Empty fields take the model's values (frozen: set once, here).
        if not self.model_path:
            object.__setattr__(self, 'model_path', str(MODELS_DIR / preset.file))
        for name in ('home_qpos', 'workspace_low', 'workspace_high'):
            if len(getattr(self, name)) == 0:
                object.__setattr__(self, name, tuple(getattr(preset, name)))
        if not Path(self.model_path).is_file():
            raise ValueError(f'model_path {self.model_path!r} is not a file; '
                             f'point it at an MJCF such as {DEFAULT_MODEL_PATH!r}')

    def _check_action(self):
        """Control rate, action mode and step sizes."""
        if not (math.isfinite(self.control_hz) and self.control_hz > 0):
            raise ValueError(f'control_hz must be a positive number, got {self.control_hz}')
        if self.action_mode not in ACTION_MODES:
            raise ValueError(f'action_mode must be one of {list(ACTION_MODES)}, got '
                             f'{self.action_mode!r}')
        if not self.max_ee_step_m > 0:
            raise ValueError(f'max_ee_step_m must be > 0, got {self.max_ee_step_m}')
        if not self.max_joint_step_rad > 0:
            raise ValueError(f'max_joint_step_rad must be > 0, got {self.max_joint_step_rad}')

    def _check_workspace(self):
        """Workspace bounds, and the home noise and target distance of episode starts."""
        for name in ('workspace_low', 'workspace_high'):
            if len(getattr(self, name)) != 3:
                raise ValueError(f'{name} must have 3 values (x, y, z), got {getattr(self, name)}')
        if not all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high)):
            raise ValueError(f'workspace_low {self.workspace_low} must be below workspace_high '
                             f'{self.workspace_high} on every axis; swap or widen them')
        if self.home_noise_rad < 0:
            raise ValueError(f'home_noise_rad must be >= 0, got {self.home_noise_rad}')
        diagonal = math.dist(self.workspace_low, self.workspace_high)
        if not 0 <= self.target_min_distance_m < 0.5 * diagonal:
            raise ValueError(f'target_min_distance_m must be in [0, {0.5 * diagonal:.3f}) '
                             f'(half the workspace diagonal), got {self.target_min_distance_m}')

    def _check_ik(self):
        """Inverse kinematics settings."""
        if not self.ik_damping > 0:
            raise ValueError(f'ik_damping must be > 0, got {self.ik_damping}')
        if self.ik_iterations < 1:
            raise ValueError(f'ik_iterations must be >= 1, got {self.ik_iterations}')
        if not 0 <= self.nullspace_gain <= 1:
            raise ValueError(f'nullspace_gain must be in [0, 1], got {self.nullspace_gain}')

    @property
    def kind(self) -> str:
        """The robot kind of this arm (RobotDescription.kind)."""
        return ARM_MODELS[self.model].kind


class MujocoArmSim:
    """The arm, its target and the reach task's state; one instance per simulated robot.

    Not thread-safe; `render` must be called from the thread that first rendered (the GL
    context lives there).
    """

    EE_ACTION_DIM = 3

    def __init__(self, cfg: ArmSimConfig = ArmSimConfig(), seed: int | None = None):
        self.cfg = cfg
        self.model = mujoco.MjModel.from_xml_path(cfg.model_path)
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)  # inverse kinematics works here
        m = self.model

        period = 1.0 / cfg.control_hz
        substeps = round(period / m.opt.timestep)
        if substeps < 1 or abs(substeps * m.opt.timestep - period) > 1e-9 + 1e-6 * period:
            raise ValueError(f'control_hz {cfg.control_hz} gives a period of {period} s, not a '
                             f'whole number of model timesteps ({m.opt.timestep} s); pick a '
                             f'control_hz that divides {1.0 / m.opt.timestep:g}')
        self.substeps = int(substeps)

        hinge = mujoco.mjtJoint.mjJNT_HINGE
        if m.nq != m.nv or any(m.jnt_type[j] != hinge for j in range(m.njnt)):
            raise ValueError(f'model {cfg.model_path!r} must have hinge joints only')
        if m.nu != m.njnt or any(m.actuator_trnid[a, 0] != a for a in range(m.nu)):
            raise ValueError(f'model {cfg.model_path!r} needs one position actuator per joint, '
                             'in joint order')
        affine = mujoco.mjtBias.mjBIAS_AFFINE
        for a in range(m.nu):
            if m.actuator_biastype[a] != affine or not m.actuator_biasprm[a, 1] < 0:
                raise ValueError(f'actuator {m.actuator(a).name!r} of {cfg.model_path!r} is not '
                                 'a position servo (a torque motor?); drive every joint with '
                                 'a <position> actuator')
        if len(cfg.home_qpos) != m.nq:
            raise ValueError(f'home_qpos has {len(cfg.home_qpos)} values but the model has '
                             f'{m.nq} joints; give one angle per joint')
        self._ee_site = self._lookup(mujoco.mjtObj.mjOBJ_SITE, cfg.ee_site, 'ee_site')
        target_id = self._lookup(mujoco.mjtObj.mjOBJ_BODY, cfg.target_body, 'target_body')
        self._mocap = int(m.body_mocapid[target_id])
        if self._mocap < 0:
            raise ValueError(f'target_body {cfg.target_body!r} must be a mocap body '
                             '(mocap="true" in the MJCF)')

        self.joint_names = tuple(m.joint(j).name for j in range(m.njnt))
        self.camera_names = tuple(m.camera(c).name for c in range(m.ncam))
        self._q_low = m.jnt_range[:, 0].copy()
        self._q_high = m.jnt_range[:, 1].copy()
        self._home = np.asarray(cfg.home_qpos, dtype=np.float64)
        if np.any(self._home < self._q_low) or np.any(self._home > self._q_high):
            raise ValueError(f'home_qpos {cfg.home_qpos} is outside the joint limits '
                             f'{m.jnt_range.tolist()}; move it inside')
        self._ws_low = np.asarray(cfg.workspace_low, dtype=np.float64)
        self._ws_high = np.asarray(cfg.workspace_high, dtype=np.float64)

        self.kind = cfg.kind
        self.action_dim = self.EE_ACTION_DIM if cfg.action_mode == 'ee_delta' else m.nu
        self.action_low = -np.ones(self.action_dim, dtype=np.float32)
        self.action_high = np.ones(self.action_dim, dtype=np.float32)
        sizes = {'joint_pos': m.nq, 'joint_vel': m.nv, 'ee_pos': 3, 'target_pos': 3,
                 'ee_to_target': 3}
        self.observation_layout: dict[str, tuple[int, int]] = {}
        start = 0
        for name, size in sizes.items():
            self.observation_layout[name] = (start, start + size)
            start += size
        self.state_dim = start

        # Rendering is for images only: shadows and reflections cost time, not information.
        m.light_castshadow[:] = 0
        m.mat_reflectance[:] = 0
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

        self._rng = np.random.default_rng(seed)
        self.reset(seed)

    def _lookup(self, kind, name: str, field: str) -> int:
        idx = mujoco.mj_name2id(self.model, kind, name)
        if idx < 0:
            raise ValueError(f'{field} {name!r} is not in model {self.cfg.model_path!r}')
        return idx

    # ------------------------------------------------------------------ task
    @property
    def control_hz(self) -> float:
        return self.cfg.control_hz

    @property
    def ee_pos(self) -> np.ndarray:
        """End-effector position (m, world frame), a copy."""
        return self.data.site_xpos[self._ee_site].copy()

    @property
    def target_pos(self) -> np.ndarray:
        """Target position (m, world frame), a copy."""
        return self.data.mocap_pos[self._mocap].copy()

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode: arm near home, a new random target; returns the state.

        A seed restarts the random stream (same seed, same episode); None continues it.
        """
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        noise = self._rng.uniform(-self.cfg.home_noise_rad, self.cfg.home_noise_rad, m.nq)
        d.qpos[:] = np.clip(self._home + noise, self._q_low, self._q_high)
        d.ctrl[:] = d.qpos
        mujoco.mj_kinematics(m, d)
        ee = d.site_xpos[self._ee_site]
        for _ in range(1000):
            target = self._rng.uniform(self._ws_low, self._ws_high)
            if np.linalg.norm(target - ee) >= self.cfg.target_min_distance_m:
                break
        d.mocap_pos[self._mocap] = target
        mujoco.mj_forward(m, d)
        return self.observe()

    def apply(self, action: np.ndarray) -> np.ndarray:
        """Move for one control period: the end effector by action * max_ee_step_m
        ('ee_delta'), or each joint's target by action * max_joint_step_rad ('joint_delta').

        `action` has `action_dim` values, clipped to [-1, 1]. Returns the new state.
        """
        a = checked_action(action, self.action_dim)
        a = np.clip(a, -1.0, 1.0)
        if self.cfg.action_mode == 'ee_delta':
            desired = np.clip(self.ee_pos + a * self.cfg.max_ee_step_m, self._ws_low,
                              self._ws_high)
            self.data.ctrl[:] = self._joint_targets(desired)
        else:
            self.data.ctrl[:] = np.clip(self.data.qpos + a * self.cfg.max_joint_step_rad,
                                        self._q_low, self._q_high)
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        mujoco.mj_kinematics(self.model, self.data)  # site positions of the final state
        return self.observe()

    def observe(self) -> np.ndarray:
        """The current state vector (float32, `state_dim` values)."""
        d = self.data
        ee = d.site_xpos[self._ee_site]
        target = d.mocap_pos[self._mocap]
        return np.concatenate([d.qpos, d.qvel, ee, target, target - ee]).astype(np.float32)

    def _joint_targets(self, desired_ee: np.ndarray) -> np.ndarray:
        """Joint positions that put the ee site at `desired_ee` (damped least squares)."""
        m, s = self.model, self._scratch
        s.qpos[:] = self.data.qpos
        jac = np.zeros((3, m.nv))
        lam2 = self.cfg.ik_damping ** 2
        eye3 = np.eye(3)
        for i in range(self.cfg.ik_iterations):
            mujoco.mj_kinematics(m, s)
            mujoco.mj_comPos(m, s)
            mujoco.mj_jacSite(m, s, jac, None, self._ee_site)
            err = desired_ee - s.site_xpos[self._ee_site]
            jjt_inv = np.linalg.solve(jac @ jac.T + lam2 * eye3, eye3)
            dq = jac.T @ (jjt_inv @ err)
            if i == 0 and self.cfg.nullspace_gain > 0:
                # J+ J with J+ the damped pseudo-inverse: motion that moves the ee.
                task = jac.T @ jjt_inv @ jac
                dq += (np.eye(m.nv) - task) @ (self.cfg.nullspace_gain * (self._home - s.qpos))
            s.qpos[:] = np.clip(s.qpos + dq, self._q_low, self._q_high)
        return s.qpos.copy()

    # ------------------------------------------------------------- rendering
    def render(self, camera: str, width: int = 128, height: int = 128) -> np.ndarray:
        """An RGB image (uint8, height x width x 3) of the current state from `camera`."""
        if camera not in self.camera_names:
            raise ValueError(f'unknown camera {camera!r}; known: {list(self.camera_names)}')
        vis = self.model.vis.global_
        if not (0 < width <= vis.offwidth and 0 < height <= vis.offheight):
            raise ValueError(f'image size {width}x{height} must be within the offscreen '
                             f'buffer {vis.offwidth}x{vis.offheight}; raise <global offwidth '
                             'offheight> in the MJCF or ask for a smaller image')
        key = (width, height)
        renderer = self._renderers.get(key)
        if renderer is None:
            try:
                renderer = mujoco.Renderer(self.model, height=height, width=width)
            except Exception as e:  # the GL backends raise assorted types
                raise RuntimeError(
                    f'offscreen rendering is unavailable with MUJOCO_GL='
                    f'{os.environ.get("MUJOCO_GL")!r} ({type(e).__name__}: {e}); set MUJOCO_GL '
                    'to egl (GPU) or osmesa (software) before importing mujoco and install '
                    'that library') from e
            self._renderers[key] = renderer
        renderer.update_scene(self.data, camera=camera)
        return renderer.render()

    def close(self) -> None:
        """Free the renderers' GL resources (the sim itself needs no closing)."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
