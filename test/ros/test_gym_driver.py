"""A gymnasium environment as a robot: the driver's lifecycle over real DDS, with the
environment's own reward labelling each step (reward_source: env)."""
from lifecycle_msgs.msg import Transition as LcTransition
from ros_env import Proc, executable, wait_for
from test_driver_node import call, change, state

from realrl_common.convert import from_f32, to_f32
from realrl_common.qos import COMMAND_QOS, DATA_QOS, SENSOR_QOS, STATUS_QOS
from realrl_interfaces.msg import Action, DriverStatus, Observation, RewardLabel, Transition
from realrl_interfaces.srv import Describe


def test_pendulum_through_the_lifecycle_labels_its_own_steps(ros_node, tmp_path):
    node = ros_node
    proc = Proc([executable('realrl_driver', 'gym_driver'), '--ros-args',
                 '-r', '__ns:=/arm0', '-p', 'robot_id:=arm0', '-p', 'replay_wait_s:=0.0',
                 '-p', 'control_hz:=20.0', '-p', 'episode_max_steps:=6',
                 '-p', 'env.env_id:=Pendulum-v1'], tmp_path / 'driver.log')
    try:
        observations, transitions, statuses, labels = [], [], [], []
        node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
        node.create_subscription(Transition, '/arm0/transition', transitions.append, DATA_QOS)
        node.create_subscription(DriverStatus, '/arm0/status', statuses.append, STATUS_QOS)
        node.create_subscription(RewardLabel, '/arm0/reward_label', labels.append, COMMAND_QOS)
        actions = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)

        assert wait_for(lambda: statuses, 20, spin=node.spin), proc.output()
        assert state(node) == 'unconfigured'
        assert change(node, LcTransition.TRANSITION_CONFIGURE), proc.output()
        assert state(node) == 'inactive'
        desc = call(node, node.create_client(Describe, '/arm0/driver/describe'),
                    Describe.Request()).description
        assert (desc.kind, desc.state_dim, desc.action_dim) == ('gym_Pendulum_v1', 3, 1)
        assert list(desc.action_low) == [-2.0] and list(desc.action_high) == [2.0]
        node.spin(0.5)
        assert observations == []  # inactive: the environment is not stepped

        assert change(node, LcTransition.TRANSITION_ACTIVATE)
        assert wait_for(lambda: observations, 10, spin=node.spin), proc.output()
        sent_bad = False
        for _ in range(60):  # answer whatever observation is current (no reward node)
            obs = observations[-1]
            bad = obs.step == 2 and not sent_bad  # once: beyond the bound of 2.0
            sent_bad |= bad
            actions.publish(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                                   action=to_f32([3.0 if bad else 1.5]), policy_version=2))
            if wait_for(lambda: len(transitions) >= 8, 0.1, spin=node.spin):
                break
        assert len(transitions) >= 8, proc.output()
        # Each step is sent as soon as it closes (no replay node acks here, so the resend
        # timer would repeat them only after resend_after_s).
        assert [t.seq for t in transitions] == list(range(1, len(transitions) + 1))
        assert all(from_f32(t.action).tolist() == [1.5] for t in transitions)  # 3.0: rejected
        rewards = [t.reward for t in transitions]
        assert all(-16.3 <= r <= 0.0 for r in rewards) and len(set(rewards)) > 1  # Pendulum's cost
        assert any(t.truncated for t in transitions)  # episode_max_steps 6
        assert labels and labels[0].robot_id == 'arm0'  # its own labels, for observers
        assert statuses[-1].actions_rejected >= 1

        assert change(node, LcTransition.TRANSITION_DEACTIVATE)
        node.spin(0.3)
        n = len(observations)
        node.spin(0.6)
        assert len(observations) == n  # the clock stopped
        assert change(node, LcTransition.TRANSITION_CLEANUP)
        assert state(node) == 'unconfigured'
        assert change(node, LcTransition.TRANSITION_CONFIGURE)  # and again from scratch
        assert state(node) == 'inactive'
    finally:
        assert proc.stop() in (0, -2, 130, -9)
