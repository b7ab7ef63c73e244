"""The driver's visualization core (no ROS): frames that compose back to MuJoCo's world
poses, the rate limiter, and shipped rviz2/Foxglove files that name the published topics."""
import json
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml
from transforms3d.quaternions import quat2mat

from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig, MujocoArmSim
from realrl_driver.viz.scene import BASE, RateLimiter, frame_name, scene_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize('model', ['reach_arm', 'ur5e6'])
def test_frames_compose_to_the_world_poses_of_every_body(model):
    sim = MujocoArmSim(ArmSimConfig(model=model), seed=3)
    sim.reset()
    sim.apply(np.full(sim.action_dim, 0.5))
    scene = scene_of(sim, 'r1')
    parent = {f.child: f for f in scene.frames}
    world = {scene.base_frame: (np.zeros(3), np.eye(3))}

    def pose(frame):
        if frame not in world:
            f = parent[frame]
            p, r = pose(f.parent)
            x, y, z, w = f.rotation_xyzw
            world[frame] = (p + r @ np.array(f.translation), r @ quat2mat([w, x, y, z]))
        return world[frame]

    for b in range(1, sim.model.nbody):
        name = mujoco.mj_id2name(sim.model, mujoco.mjtObj.mjOBJ_BODY, b)
        p, r = pose(frame_name('r1', name))
        assert np.allclose(p, sim.data.xpos[b], atol=1e-9)
        assert np.allclose(r, sim.data.xmat[b].reshape(3, 3), atol=1e-9)
    assert scene.base_frame == 'r1/base' and np.allclose(scene.target, sim.target_pos)
    assert len(scene.joint_names) == sim.model.nu  # one position actuator per hinge
    assert np.allclose(scene.joint_positions, sim.data.qpos[:sim.model.nu])


def test_rate_limiter():
    limiter = RateLimiter(10.0)
    assert [limiter.due(t) for t in (0.0, 0.05, 0.0999, 0.1, 0.15, 0.35)] == [
        True, False, False, True, False, True]
    off = RateLimiter(0.0)
    assert not any(off.due(t) for t in (0.0, 1.0, 100.0))
    with pytest.raises(ValueError, match='viz_hz'):
        RateLimiter(-1.0)


def test_shipped_rviz_and_foxglove_files_name_the_published_topics():
    rviz = yaml.safe_load((ROOT / 'config/viz/realrl.rviz').read_text())
    manager = rviz['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == frame_name('arm0', BASE)
    topics = {d['Topic']['Value'] for d in manager['Displays'] if 'Topic' in d}
    assert topics == {'/arm0/viz/markers', '/arm0/camera/front/image_raw'}
    assert {'rviz_default_plugins/TF', 'rviz_default_plugins/MarkerArray'} <= {
        d['Class'] for d in manager['Displays']}
    fox = json.loads((ROOT / 'config/viz/realrl.foxglove.json').read_text())
    panels = fox['configById']
    assert panels['3D!realrl']['followTf'] == 'arm0/base'
    assert panels['Image!front']['imageMode']['imageTopic'] == '/arm0/camera/front/image_raw'
    used = json.dumps(fox['layout'])
    assert all(panel in used for panel in panels)  # every configured panel is laid out
