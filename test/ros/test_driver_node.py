"""The MuJoCo arm driver as a lifecycle node over real DDS."""
import signal

import numpy as np
from lifecycle_msgs.msg import Transition as LcTransition
from lifecycle_msgs.srv import ChangeState, GetState
from ros_env import Proc, executable, wait_for
from std_srvs.srv import SetBool

from realrl_common.convert import from_f32, to_f32
from realrl_common.qos import COMMAND_QOS, DATA_QOS, SENSOR_QOS, STATUS_QOS
from realrl_interfaces.msg import Action, DriverStatus, Observation, RewardLabel, Transition
from realrl_interfaces.srv import Describe


def call(node, client, request, timeout=10.0, attempts=1):
    """A service call; idempotent ones may be sent again, since a request sent while
    discovery is still matching the reply path can be lost."""
    assert wait_for(client.service_is_ready, timeout, spin=node.spin), f'{client.srv_name} absent'
    for _ in range(attempts):
        future = client.call_async(request)
        if wait_for(future.done, timeout / attempts, spin=node.spin):
            return future.result()
    raise AssertionError(f'{client.srv_name} did not answer')


def wait_until_up(node, proc):
    """The driver's heartbeat arrives: it is up and discovery has matched both ways."""
    statuses = []
    sub = node.create_subscription(DriverStatus, '/arm0/status', statuses.append, STATUS_QOS)
    assert wait_for(lambda: statuses, 20, spin=node.spin), proc.output()
    state(node)  # and its lifecycle services answer
    node.destroy_subscription(sub)


def change(node, transition_id):
    client = node.create_client(ChangeState, '/arm0/driver/change_state')
    req = ChangeState.Request()
    req.transition.id = transition_id
    return call(node, client, req).success


def state(node):
    """The driver's lifecycle state. A driver that replaced one of the same name may take a
    while to match the reply path under load, so the idempotent request is sent up to ten
    times over 30 s."""
    client = node.create_client(GetState, '/arm0/driver/get_state')
    try:
        return call(node, client, GetState.Request(), timeout=30.0,
                    attempts=10).current_state.label
    finally:
        node.destroy_client(client)


def test_lifecycle_description_safety_and_transitions(ros_node, tmp_path):
    node = ros_node
    proc = Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args',
                 '-r', '__ns:=/arm0', '-p', 'replay_wait_s:=0.0', '-p', 'control_hz:=20.0',
                 '-p', 'episode_max_steps:=5'], tmp_path / 'driver.log')
    try:
        observations, transitions, statuses = [], [], []
        node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
        node.create_subscription(Transition, '/arm0/transition', transitions.append, DATA_QOS)
        node.create_subscription(DriverStatus, '/arm0/status', statuses.append, STATUS_QOS)
        actions = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)
        labels = node.create_publisher(RewardLabel, '/arm0/reward_label', COMMAND_QOS)

        assert wait_for(lambda: statuses, 15, spin=node.spin), proc.output()
        assert state(node) == 'unconfigured'
        assert change(node, LcTransition.TRANSITION_CONFIGURE)
        desc = call(node, node.create_client(Describe, '/arm0/driver/describe'),
                    Describe.Request()).description
        assert ((desc.robot_id, desc.kind, desc.state_dim, desc.action_dim)
                == ('arm0', 'mujoco_arm', 17, 3))
        assert list(desc.state_names)[:3] == ['joint_pos', 'joint_vel', 'ee_pos']
        node.spin(0.5)
        assert observations == []  # inactive: no motion, nothing published
        assert change(node, LcTransition.TRANSITION_ACTIVATE)
        assert wait_for(lambda: observations, 10, spin=node.spin)

        def answer(action, **kw):
            obs = observations[-1]
            actions.publish(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                                   action=to_f32(action), policy_version=4, **kw))
            labels.publish(RewardLabel(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                                       reward=-1.0, success=False))

        bad = [[np.nan, 0, 0], [0, 0], [5, 0, 0], [np.inf, 0, 0]]
        for a in bad:
            answer(a)
            node.spin(0.1)
        assert wait_for(lambda: statuses[-1].actions_rejected >= len(bad), 5, spin=node.spin)
        assert statuses[-1].steps == 0  # nothing bad was applied
        for _ in range(12):
            before = len(observations)
            answer([0.5, -0.5, 0.0])
            wait_for(lambda: len(observations) > before and observations[-1].step != 0
                     or len(observations) > before + 1, 2, spin=node.spin)
        assert wait_for(lambda: len(transitions) >= 5, 5, spin=node.spin), proc.output()
        tr = transitions[0]
        assert tr.policy_version == 4 and from_f32(tr.action).tolist() == [0.5, -0.5, 0.0]
        assert [t.seq for t in transitions] == list(range(1, len(transitions) + 1))
        assert any(t.truncated for t in transitions)  # episode_max_steps 5 was reached
        # each frame crosses once: past step 0 the obs frames are the previous next frames
        first = [t for t in transitions if t.step == 0]
        later = [t for t in transitions if t.step > 0]
        assert first and later and all(len(t.next_images) == len(first[0].images)
                                       for t in transitions)
        assert not any(t.images_from_previous for t in first)
        assert all(t.images_from_previous and not t.images for t in later)

        estop = node.create_client(SetBool, '/arm0/driver/estop')
        assert call(node, estop, SetBool.Request(data=True)).success
        node.spin(0.5)  # let a status from after the e-stop arrive
        steps = statuses[-1].steps
        for _ in range(5):
            answer([0.1, 0.1, 0.1])
            node.spin(0.1)
        node.spin(0.5)
        assert statuses[-1].steps == steps  # e-stopped: nothing moves

        assert change(node, LcTransition.TRANSITION_DEACTIVATE)
        node.spin(0.3)
        n = len(observations)
        node.spin(0.6)
        assert len(observations) == n  # inactive again: the clock stopped
        assert change(node, LcTransition.TRANSITION_CLEANUP)
        assert state(node) == 'unconfigured'
    finally:
        assert proc.stop() in (0, -2, 130, -9)


def test_every_action_is_accounted_for_and_the_status_says_what_the_loop_waits_for(
        ros_node, tmp_path):
    """Nothing sent on the action topic vanishes uncounted. Actions with an empty or another
    robot's robot_id are rejected as wrong_robot_id. A burst sent while the driver is frozen
    (SIGSTOP) overflows what the subscription queue and the publisher's history keep (10
    each); the rest are counted as lost. In the end received + lost == sent, with the
    per-reason counts on the status topic. The status also says what the loop waits for."""
    node = ros_node
    proc = Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args',
                 '-r', '__ns:=/arm0', '-p', 'replay_wait_s:=0.0', '-p', 'control_hz:=10.0',
                 '-p', 'episode_max_steps:=50'], tmp_path / 'driver.log')
    try:
        observations, statuses = [], []
        node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
        node.create_subscription(DriverStatus, '/arm0/status', statuses.append, STATUS_QOS)
        actions = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)
        assert wait_for(lambda: statuses, 15, spin=node.spin), proc.output()
        assert change(node, LcTransition.TRANSITION_CONFIGURE)
        assert change(node, LcTransition.TRANSITION_ACTIVATE)
        assert wait_for(lambda: observations, 10, spin=node.spin)
        assert wait_for(lambda: statuses[-1].waiting_for == 'action', 5, spin=node.spin)

        def reasons():
            return dict(zip(statuses[-1].rejected_reasons, statuses[-1].rejected_counts))

        sent = 0
        for rid in ('', 'arm1', ''):
            actions.publish(Action(robot_id=rid, episode_id=0, step=0, action=to_f32([0, 0, 0])))
            sent += 1
        assert wait_for(lambda: reasons().get('wrong_robot_id') == 3, 5, spin=node.spin), \
            proc.output()
        proc.kill(signal.SIGSTOP)
        try:
            for k in range(300):  # answers to a step that never was: stale when taken
                actions.publish(Action(robot_id='arm0', episode_id=0, step=1000 + k,
                                       action=to_f32([0, 0, 0])))
                sent += 1
            node.spin(0.5)
        finally:
            proc.kill(signal.SIGCONT)
        node.spin(0.5)
        obs = observations[-1]  # the one valid action: the loop then waits for its label
        actions.publish(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                               action=to_f32([0.1, 0, 0])))
        sent += 1
        assert wait_for(lambda: statuses[-1].actions_received + statuses[-1].actions_lost
                        == sent, 10, spin=node.spin), (statuses[-1], sent)
        last = statuses[-1]
        assert last.actions_lost >= 300 - 20, last  # at most a queue and a history got through
        assert reasons()['stale'] == last.actions_received - 3 - 1
        assert last.actions_rejected == last.actions_received - 1
        assert wait_for(lambda: statuses[-1].waiting_for == 'reward_label', 5, spin=node.spin)
        assert wait_for(lambda: 'waiting for reward labels on /arm0/reward_label'
                        in proc.output(), 5, spin=node.spin)  # the driver's console too
    finally:
        proc.kill(signal.SIGCONT)
        assert proc.stop() in (0, -2, 130, -9)


def test_bad_parameters_fail_configure_with_a_named_key(ros_node, tmp_path):
    proc = Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args',
                 '-r', '__ns:=/arm0', '-p', 'control_hz:=33.0'], tmp_path / 'driver.log')
    try:
        wait_until_up(ros_node, proc)
        assert not change(ros_node, LcTransition.TRANSITION_CONFIGURE)
        assert wait_for(lambda: 'control_hz' in proc.output(), 5)
        assert state(ros_node) == 'unconfigured'
    finally:
        proc.stop()
