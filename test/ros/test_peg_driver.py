"""The peg-insertion robot (mujoco_peg_driver) over real DDS: it describes itself without the
hole, sends both cameras' frames and labels its own steps; pushing the peg straight down from
its start (beside the hole) never succeeds."""
import numpy as np
from lifecycle_msgs.msg import Transition as LcTransition
from ros_env import Proc, executable, wait_for
from test_driver_node import call, change, state

from realrl_common.convert import from_f32, image_array, to_f32
from realrl_common.qos import COMMAND_QOS, DATA_QOS, SENSOR_QOS, STATUS_QOS
from realrl_interfaces.msg import Action, DriverStatus, Observation, RewardLabel, Transition
from realrl_interfaces.srv import Describe


def test_peg_driver_runs_with_cameras_and_labels_itself(ros_node, tmp_path):
    node = ros_node
    proc = Proc([executable('realrl_driver', 'mujoco_peg_driver'), '--ros-args',
                 '-r', '__ns:=/arm0', '-p', 'robot_id:=arm0', '-p', 'replay_wait_s:=0.0',
                 '-p', 'episode_max_steps:=8', '-p', 'image_size:=[32, 32]',
                 '-p', 'seed:=21'], tmp_path / 'driver.log')
    try:
        observations, transitions, statuses, labels = [], [], [], []
        node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
        node.create_subscription(Transition, '/arm0/transition', transitions.append, DATA_QOS)
        node.create_subscription(DriverStatus, '/arm0/status', statuses.append, STATUS_QOS)
        node.create_subscription(RewardLabel, '/arm0/reward_label', labels.append, COMMAND_QOS)
        actions = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)
        assert wait_for(lambda: statuses, 30, spin=node.spin), proc.output()
        assert state(node) == 'unconfigured'
        assert change(node, LcTransition.TRANSITION_CONFIGURE), proc.output()
        desc = call(node, node.create_client(Describe, '/arm0/driver/describe'),
                    Describe.Request()).description
        assert (desc.kind, desc.state_dim, desc.action_dim) == ('mujoco_peg', 20, 3)
        assert list(desc.state_names) == ['joint_pos', 'joint_vel', 'ee_pos', 'ee_force']
        assert list(desc.camera_names) == ['front', 'wrist']
        assert (desc.image_height, desc.image_width) == (32, 32)

        assert change(node, LcTransition.TRANSITION_ACTIVATE)
        assert wait_for(lambda: observations, 15, spin=node.spin), proc.output()
        first = observations[0]
        assert [image_array(i).shape for i in first.images] == [(32, 32, 3)] * 2
        for _ in range(200):  # straight down, as far as the driver allows
            obs = observations[-1]
            actions.publish(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                                   action=to_f32([0.0, 0.0, -1.0])))
            if wait_for(lambda: len(transitions) >= 8, 0.1, spin=node.spin):
                break
        assert len(transitions) >= 8, proc.output()
        episode = [t for t in transitions if t.episode_id == transitions[0].episode_id]
        heights = [from_f32(t.next_state)[16] for t in episode]
        assert heights[-1] < heights[0] - 0.03  # it went down ...
        assert not any(t.terminated for t in episode) and episode[-1].truncated
        assert all(t.reward == 0.0 for t in episode)  # ... and never into the hole
        assert labels and not any(label.success for label in labels)
        assert np.all(np.abs([from_f32(t.action) for t in transitions]) <= 1.0)
        assert change(node, LcTransition.TRANSITION_DEACTIVATE)
    finally:
        assert proc.stop() in (0, -2, 130, -9)
