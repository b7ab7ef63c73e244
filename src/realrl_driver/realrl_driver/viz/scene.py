"""A robot's visualization scene, free of ROS: joints, link frames, target and workspace.

``scene_of(robot, robot_id)`` reads what a robot exposes: a MuJoCo arm (anything with
``model``/``data`` of MuJoCo) gives every body as a frame relative to its parent body, the
hinge joints' positions and velocities, the target and the workspace box. Frames are named
``<robot_id>/<body>``, the MuJoCo world body being ``<robot_id>/base``, so several robots
share one TF tree without clashing. A robot that exposes none of this has no scene (its
driver then publishes only camera images).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BASE = 'base'
"""Name of every robot's root frame (``<robot_id>/base``)."""


@dataclass(frozen=True)
class Frame:
    """The pose of ``child`` in ``parent``: translation (m), rotation as x, y, z, w."""

    parent: str
    child: str
    translation: tuple[float, float, float]
    rotation_xyzw: tuple[float, float, float, float]


@dataclass
class Scene:
    """One moment of a robot, as the visualization topics carry it."""

    base_frame: str
    joint_names: list[str]
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    frames: list[Frame] = field(default_factory=list)
    target: np.ndarray | None = None
    """Target position in the base frame, where the task has one."""
    workspace: tuple[np.ndarray, np.ndarray] | None = None
    """Lower and upper corner of the workspace box in the base frame."""


class RateLimiter:
    """Says when something done at most ``hz`` times a second is due (0: never)."""

    def __init__(self, hz: float):
        if hz < 0:
            raise ValueError(f'viz_hz must be >= 0 (0: off), got {hz}')
        self.period = 1.0 / hz if hz > 0 else None
        self._next = -np.inf

    def due(self, now: float) -> bool:
        """Whether it is time again; the next time is one period after ``now``."""
        if self.period is None or now < self._next:
            return False
        self._next = now + self.period
        return True


def frame_name(robot_id: str, body: str) -> str:
    """The TF frame of a body of a robot."""
    return f'{robot_id}/{body}'


def _quat_wxyz_to_xyzw(q) -> tuple[float, float, float, float]:
    return float(q[1]), float(q[2]), float(q[3]), float(q[0])


def _relative_pose(parent_pos, parent_mat, child_pos, child_mat):
    """Child pose in the parent's frame: (translation, rotation matrix)."""
    rot = parent_mat.T @ child_mat
    return parent_mat.T @ (child_pos - parent_pos), rot


def _matrix_to_quat_wxyz(m: np.ndarray) -> np.ndarray:
    import mujoco
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(m, dtype=np.float64).reshape(9))
    return q


def mujoco_scene(model, data, robot_id: str, target=None, workspace=None) -> Scene:
    """The scene of a MuJoCo model in state ``data`` (kinematics already computed)."""
    import mujoco
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) or f'body{b}'
             for b in range(model.nbody)]
    names[0] = BASE
    frames = []
    for b in range(1, model.nbody):
        p = int(model.body_parentid[b])
        t, r = _relative_pose(data.xpos[p], data.xmat[p].reshape(3, 3),
                              data.xpos[b], data.xmat[b].reshape(3, 3))
        frames.append(Frame(frame_name(robot_id, names[p]), frame_name(robot_id, names[b]),
                            tuple(float(x) for x in t),
                            _quat_wxyz_to_xyzw(_matrix_to_quat_wxyz(r))))
    hinges = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    joint_names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or f'joint{j}'
                   for j in hinges]
    qpos = np.array([data.qpos[model.jnt_qposadr[j]] for j in hinges], dtype=np.float64)
    qvel = np.array([data.qvel[model.jnt_dofadr[j]] for j in hinges], dtype=np.float64)
    return Scene(frame_name(robot_id, BASE), joint_names, qpos, qvel, frames,
                 None if target is None else np.asarray(target, dtype=np.float64),
                 workspace)


def scene_of(robot, robot_id: str) -> Scene | None:
    """The robot's scene now, or None for a robot that exposes no kinematics."""
    inner = getattr(robot, 'inner', robot)  # a robot with real cameras attached
    model, data = getattr(inner, 'model', None), getattr(inner, 'data', None)
    if model is None or data is None or not hasattr(model, 'nbody'):
        return None
    target = getattr(inner, 'target_pos', None)
    cfg = getattr(inner, 'cfg', None)
    low, high = getattr(cfg, 'workspace_low', None), getattr(cfg, 'workspace_high', None)
    workspace = (np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)) \
        if low and high else None
    return mujoco_scene(model, data, robot_id, target, workspace)
