"""The ur_rtde UR driver as a lifecycle node over real DDS: simulated controller, and a
real-SDK configure with no controller there."""
import numpy as np
from lifecycle_msgs.msg import Transition as LcTransition
from ros_env import Proc, executable, wait_for
from test_driver_node import call, change, state, wait_until_up

from realrl_common.convert import from_f32, to_f32
from realrl_common.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS
from realrl_interfaces.msg import Action, DriverStatus, Observation, RewardLabel
from realrl_interfaces.srv import Describe


def driver(tmp_path, *params):
    args = [executable('realrl_driver', 'ur_rtde_driver'), '--ros-args', '-r', '__ns:=/arm0',
            '-p', 'replay_wait_s:=0.0', '-p', 'control_hz:=20.0']
    for p in params:
        args += ['-p', p]
    return Proc(args, tmp_path / 'driver.log')


def test_simulated_arm_through_the_lifecycle_moves_on_actions(ros_node, tmp_path):
    node = ros_node
    proc = driver(tmp_path, 'ur.backend:=sim', 'ur.action_mode:=joint_delta',
                  'episode_max_steps:=100')
    try:
        observations = []
        node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
        actions = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)
        labels = node.create_publisher(RewardLabel, '/arm0/reward_label', COMMAND_QOS)
        wait_until_up(node, proc)
        assert state(node) == 'unconfigured'
        assert change(node, LcTransition.TRANSITION_CONFIGURE), proc.output()
        desc = call(node, node.create_client(Describe, '/arm0/driver/describe'),
                    Describe.Request()).description
        assert (desc.kind, desc.state_dim, desc.action_dim) == ('ur_rtde', 18, 6)
        assert list(desc.state_names) == ['joint_pos', 'joint_vel', 'tcp_pose']
        assert change(node, LcTransition.TRANSITION_ACTIVATE)
        assert wait_for(lambda: observations, 10, spin=node.spin), proc.output()
        start = from_f32(observations[0].state)

        for _ in range(15):  # shoulder pan +, the rest still
            obs = observations[-1]
            actions.publish(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                                   action=to_f32([1.0, 0, 0, 0, 0, 0])))
            labels.publish(RewardLabel(robot_id='arm0', episode_id=obs.episode_id,
                                       step=obs.step, reward=0.0, success=False))
            wait_for(lambda: observations[-1].step > obs.step, 2, spin=node.spin)
        moved = from_f32(observations[-1].state)[:6] - start[:6]
        assert observations[-1].step >= 10, proc.output()
        assert moved[0] > 0.05 and np.all(np.abs(moved[1:]) < 0.02), moved

        assert change(node, LcTransition.TRANSITION_DEACTIVATE)
        node.spin(0.3)
        n = len(observations)
        node.spin(0.6)
        assert len(observations) == n  # inactive: the clock stopped
        assert change(node, LcTransition.TRANSITION_CLEANUP)
        assert state(node) == 'unconfigured'
        assert change(node, LcTransition.TRANSITION_CONFIGURE)  # and it can connect again
    finally:
        assert proc.stop() in (0, -2, 130, -9)


def test_real_backend_without_a_controller_fails_configure_and_stays_up(ros_node, tmp_path):
    node = ros_node
    proc = driver(tmp_path, 'ur.backend:=real', 'ur.host:=127.0.0.1')
    try:
        statuses = []
        node.create_subscription(DriverStatus, '/arm0/status', statuses.append, STATUS_QOS)
        wait_until_up(node, proc)
        assert not change(node, LcTransition.TRANSITION_CONFIGURE)
        assert wait_for(lambda: 'no UR controller at 127.0.0.1 (RTDE port 30004)' in proc.output(),
                        5), proc.output()
        assert 'ur.backend: sim' in proc.output()
        assert state(node) == 'unconfigured'
        seen = len(statuses)
        assert wait_for(lambda: len(statuses) > seen, 5, spin=node.spin)  # still alive
        assert proc.p.poll() is None
    finally:
        proc.stop()
