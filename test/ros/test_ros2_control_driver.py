"""The ros2_control driver against a mock ros2_control robot (ros2_control_peer), both real
processes over real DDS: lifecycle, limits, clear configure errors, a peer that dies."""
import json
import signal

import numpy as np
from lifecycle_msgs.msg import Transition as LcTransition
from ros_env import Proc, executable, wait_for
from sensor_msgs.msg import JointState
from test_driver_node import call, change, state, wait_until_up

from realrl_common.convert import from_f32, to_f32
from realrl_common.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS
from realrl_interfaces.msg import Action, DriverStatus, Observation, RewardLabel
from realrl_interfaces.srv import Describe

LOWER, UPPER = '[-1.0, -0.5, -2.0]', '[1.0, 0.5, 2.0]'


def peer(tmp_path, name='peer', joints='[j1, j2, j3]', interface='position', lower=LOWER,
         upper=UPPER, extra=()):
    args = ['-p', f'joints:={joints}', '-p', f'lower_limits:={lower}',
            '-p', f'upper_limits:={upper}', '-p', f'command_interface:={interface}',
            '-p', 'lag_s:=0.03', '-p', 'max_velocity:=1.0']
    for item in extra:
        args += ['-p', item]
    return Proc([executable('realrl_sim_peers', 'ros2_control_peer'), '--ros-args'] + args,
                tmp_path / f'{name}.log')


def driver(tmp_path, interface='position', joints='[j1, j2, j3]', lower=LOWER, upper=UPPER,
           extra=(), sigint_ignored=False):
    args = ['-r', '__ns:=/arm0', '-p', 'replay_wait_s:=0.0', '-p', 'control_hz:=20.0',
            '-p', 'episode_max_steps:=500', '-p', f'ros2_control.joints:={joints}',
            '-p', f'ros2_control.lower_limits:={lower}',
            '-p', f'ros2_control.upper_limits:={upper}',
            '-p', f'ros2_control.command_interface:={interface}',
            '-p', 'ros2_control.max_step:=[0.05]', '-p', 'ros2_control.max_velocity:=[1.0]']
    for item in extra:
        args += ['-p', item]
    command = [executable('realrl_driver', 'ros2_control_driver'), '--ros-args'] + args
    if sigint_ignored:  # as a shell starts a background job: SIGINT ignored, inherited by exec
        command = ['bash', '-c', 'trap "" INT; exec "$0" "$@"'] + command
    return Proc(command, tmp_path / 'driver.log')


def mock_report(proc):
    """The peer's final report, printed when it stops (after proc.stop())."""
    line = [ln for ln in proc.output().splitlines() if ln.startswith('mock report: ')][-1]
    return json.loads(line[len('mock report: '):])


class Robot:
    """The test's side of the driver: observations in, actions and labels out."""

    def __init__(self, node):
        self.node, self.observations, self.statuses, self.joints = node, [], [], []
        node.create_subscription(Observation, '/arm0/observation', self.observations.append,
                                 SENSOR_QOS)
        node.create_subscription(DriverStatus, '/arm0/status', self.statuses.append, STATUS_QOS)
        node.create_subscription(JointState, '/joint_states', self.joints.append, SENSOR_QOS)
        self.actions = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)
        self.labels = node.create_publisher(RewardLabel, '/arm0/reward_label', COMMAND_QOS)

    def answer(self, action):
        obs = self.observations[-1]
        self.actions.publish(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                                    action=to_f32(action)))
        self.labels.publish(RewardLabel(robot_id='arm0', episode_id=obs.episode_id,
                                        step=obs.step, reward=0.0, success=False))

    def steps(self, action, n):
        """Answer n observations with action, each after the previous one moved the robot.
        An answer is sent again every 0.5 s until the robot moves (answering the same step
        twice is harmless: the driver applies one action per step), since under load one
        may come before its label or be taken while the driver is between steps."""
        for _ in range(n):
            last = self.observations[-1]

            def moved():
                return ((self.observations[-1].episode_id, self.observations[-1].step)
                        != (last.episode_id, last.step))
            for _ in range(10):
                self.answer(action)
                if wait_for(moved, 0.5, spin=self.node.spin):
                    break
            assert moved(), f'the robot did not move after 5 s of answers to {last.step}'

    def position(self):
        return np.array(self.joints[-1].position)


def test_drives_the_peer_inside_its_limits_through_the_lifecycle(ros_node, tmp_path):
    mock = peer(tmp_path)
    proc = driver(tmp_path, extra=['ros2_control.home:=[0.3, -0.2, 0.5]'])
    try:
        robot = Robot(ros_node)
        wait_until_up(ros_node, proc)
        assert state(ros_node) == 'unconfigured'
        assert change(ros_node, LcTransition.TRANSITION_CONFIGURE), proc.output()
        desc = call(ros_node, ros_node.create_client(Describe, '/arm0/driver/describe'),
                    Describe.Request()).description
        assert (desc.kind, desc.state_dim, desc.action_dim) == ('ros2_control_arm', 9, 3)
        assert list(desc.state_names) == ['joint_pos', 'joint_vel', 'joint_target']
        ros_node.spin(0.3)
        assert robot.observations == []  # inactive: nothing moves
        assert change(ros_node, LcTransition.TRANSITION_ACTIVATE)
        assert wait_for(lambda: robot.observations, 10, spin=ros_node.spin), proc.output()
        first = from_f32(robot.observations[-1].state)
        np.testing.assert_allclose(first[:3], [0.3, -0.2, 0.5], atol=0.011)  # reset: home

        for bad in ([np.nan, 0, 0], [0, 0], [5, 0, 0]):
            robot.answer(bad)
            ros_node.spin(0.1)
        assert wait_for(lambda: robot.statuses[-1].actions_rejected >= 3, 5, spin=ros_node.spin)
        assert robot.statuses[-1].steps == 0
        robot.steps([1.0, -1.0, 0.2], 30)  # j1 and j2 are driven into their limits
        ros_node.spin(0.3)
        pos = robot.position()
        assert pos[0] > 0.97 and pos[1] < -0.47 and pos[2] > 0.55, pos
        last = from_f32(robot.observations[-1].state)
        assert np.all(last[6:] <= np.array([1.0, 0.5, 2.0]) + 1e-6)  # targets inside

        assert change(ros_node, LcTransition.TRANSITION_DEACTIVATE)
        assert change(ros_node, LcTransition.TRANSITION_CLEANUP)
        assert state(ros_node) == 'unconfigured'
    finally:
        assert proc.stop() in (0, -2, 130)
        mock.stop()
    report = mock_report(mock)
    assert report['commands'] > 30
    assert (report['out_of_limits'], report['non_finite'], report['wrong_length']) == (0, 0, 0), \
        report
    assert report['too_fast'] == 0


def test_configure_fails_naming_the_topic_joint_and_fix(ros_node, tmp_path):
    proc = driver(tmp_path, joints='[j1, j2, j9]', extra=['ros2_control.connect_timeout_s:=1.0'])
    mock = None
    try:
        wait_until_up(ros_node, proc)
        assert not change(ros_node, LcTransition.TRANSITION_CONFIGURE)
        out = proc.output()
        assert 'no joint states on /joint_states' in out and 'joint_state_broadcaster' in out
        # A robot without j9 whose only controller takes velocities:
        mock = peer(tmp_path, joints='[j1, j2]', interface='velocity', lower='[-1.0, -1.0]',
                    upper='[1.0, 1.0]')
        assert wait_for(lambda: 'mock ros2_control robot' in mock.output(), 15)
        assert not change(ros_node, LcTransition.TRANSITION_CONFIGURE)
        out = proc.output()
        assert "joints ['j9'] are not in /joint_states (it has ['j1', 'j2'])" in out
        assert 'nobody subscribes to /forward_position_controller/commands' in out
        assert state(ros_node) == 'unconfigured' and proc.p.poll() is None
    finally:
        proc.stop()
        if mock is not None:
            mock.stop()


def test_a_namespaced_controller_manager_needs_both_topics(ros_node, tmp_path):
    """The README's promise: with the defaults the driver names the topics it found instead,
    and with joint_states_topic and command_topic set (relative names, resolved in the
    robot's namespace) it configures."""
    mock = Proc([executable('realrl_sim_peers', 'ros2_control_peer'), '--ros-args',
                 '-r', '__ns:=/arm0', '-p', 'joints:=[j1, j2, j3]',
                 '-p', f'lower_limits:={LOWER}', '-p', f'upper_limits:={UPPER}'],
                tmp_path / 'peer.log')
    proc = driver(tmp_path, extra=['ros2_control.connect_timeout_s:=2.0'])
    try:
        assert wait_for(lambda: 'mock ros2_control robot' in mock.output(), 15)
        wait_until_up(ros_node, proc)
        assert not change(ros_node, LcTransition.TRANSITION_CONFIGURE)
        out = proc.output()
        assert ("no joint states on /joint_states (nobody publishes it)" in out and
                "set ros2_control.joint_states_topic (JointState topics in the graph: "
                "['/arm0/joint_states'])" in out), out
        assert ("nobody subscribes to /forward_position_controller/commands" in out and
                "(command topics in the graph: ['/arm0/forward_position_controller/commands'])"
                in out), out
        assert proc.stop() in (0, -2, 130)
        proc = driver(tmp_path, extra=['ros2_control.joint_states_topic:=joint_states',
                                       'ros2_control.command_topic:='
                                       'forward_position_controller/commands'])
        wait_until_up(ros_node, proc)
        assert change(ros_node, LcTransition.TRANSITION_CONFIGURE), proc.output()
    finally:
        proc.stop()
        mock.stop()


def test_a_dead_peer_makes_the_driver_hold_until_it_is_back(ros_node, tmp_path):
    mock = peer(tmp_path, interface='velocity')
    proc = driver(tmp_path, interface='velocity',
                  extra=['ros2_control.home:=[0.2, 0.0, 0.0]', 'ros2_control.stale_after_s:=0.3'])
    second = None
    try:
        robot = Robot(ros_node)
        wait_until_up(ros_node, proc)
        assert change(ros_node, LcTransition.TRANSITION_CONFIGURE), proc.output()
        assert change(ros_node, LcTransition.TRANSITION_ACTIVATE)
        assert wait_for(lambda: robot.observations, 10, spin=ros_node.spin), proc.output()
        for _ in range(40):  # how far a step gets in velocity mode depends on the load
            robot.steps([0.5, 0.0, -0.5], 1)
            ros_node.spin(0.05)
            pos = robot.position()
            if pos[0] > 0.3 and pos[2] < -0.1:
                break
        assert pos[0] > 0.3 and pos[2] < -0.1, pos

        mock.kill(signal.SIGKILL)
        mock.stop()
        assert wait_for(lambda: 'stale_after_s' in proc.output(), 5, spin=ros_node.spin)
        ros_node.spin(0.5)
        steps = robot.statuses[-1].steps
        for _ in range(5):
            robot.answer([0.5, 0.0, 0.0])
            ros_node.spin(0.1)
        assert robot.statuses[-1].steps == steps and robot.statuses[-1].holds >= 1
        assert proc.p.poll() is None  # alive: no crash, no restart loop

        second = peer(tmp_path, name='peer2', interface='velocity')
        assert wait_for(lambda: 'robot recovered' in proc.output(), 15, spin=ros_node.spin), \
            proc.output()
        assert wait_for(lambda: robot.observations[-1].episode_id > 0, 10, spin=ros_node.spin)
        robot.steps([0.0, 0.5, 0.0], 4)
        assert robot.statuses[-1].steps > steps or wait_for(
            lambda: robot.statuses[-1].steps > steps, 2, spin=ros_node.spin)
    finally:
        assert proc.stop() in (0, -2, 130)
        mock.stop()
        if second is not None:
            second.stop()
    report = mock_report(second)
    assert report['last_command'] == [0.0, 0.0, 0.0]  # the driver left it stopped
    assert (report['out_of_limits'], report['too_fast']) == (0, 0), report


def test_a_restarted_controller_gets_nothing_until_fresh_states_then_only_small_steps(
        ros_node, tmp_path):
    """The controller manager is SIGKILLed and started again with the arm 0.8 rad away from
    where the driver last saw it. While the joint states were stale the driver must send
    nothing (a hold target from the last known pose would make the new controller jump);
    afterwards every target is within reach of the measured pose. The new peer counts a
    command that arrives before its first joint state (``before_states``) and a target more
    than 2 * max_step from its joints (``jumps``: the driver computes from states up to a
    period old, while the lagging joints may still be a step behind). Its joint states start
    1 s after its controller listens (a broadcaster spawned after the controller), so a
    driver that sent while its states were stale would be caught every time, not only when
    discovery happened to match the command topic first."""
    mock = peer(tmp_path)
    proc = driver(tmp_path, extra=['ros2_control.home:=[0.3, 0.0, 0.0]',
                                   'ros2_control.stale_after_s:=0.3'])
    second = None
    try:
        robot = Robot(ros_node)
        wait_until_up(ros_node, proc)
        assert change(ros_node, LcTransition.TRANSITION_CONFIGURE), proc.output()
        assert change(ros_node, LcTransition.TRANSITION_ACTIVATE)
        assert wait_for(lambda: robot.observations, 10, spin=ros_node.spin), proc.output()
        robot.steps([0.0, 1.0, 0.0], 3)
        mock.kill(signal.SIGKILL)
        mock.stop()
        assert wait_for(lambda: 'stale_after_s' in proc.output(), 5, spin=ros_node.spin)
        ros_node.spin(1.0)  # 20 ticks of stale joint states
        second = peer(tmp_path, name='peer2', extra=['initial_positions:=[-0.5, 0.3, 1.0]',
                                                     'max_jump:=0.1', 'states_delay_s:=1.0'])
        assert wait_for(lambda: 'robot recovered' in proc.output(), 15, spin=ros_node.spin), \
            proc.output()
        assert wait_for(lambda: robot.observations[-1].episode_id > 0, 15, spin=ros_node.spin)
        robot.steps([0.0, -1.0, -1.0], 3)
    finally:
        assert proc.stop() in (0, -2, 130)
        mock.stop()
        if second is not None:
            second.stop()
    report = mock_report(second)
    assert report['commands'] > 20  # the reset home (0.8 rad at 0.05 a step) and the steps
    assert report['position'][0] > 0.25, report  # it did get home
    assert (report['before_states'], report['jumps'], report['out_of_limits']) == (0, 0, 0), \
        report


def test_an_idle_driver_stops_on_sigint_and_sigterm(ros_node, tmp_path):
    """Without rclpy's signal handlers (the driver keeps ROS up to tell the robot to hold), a
    signal must still end a driver whose executor has nothing to wake it (unconfigured), also
    one started with SIGINT ignored (a background job of a shell, and its children)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = driver(tmp_path, sigint_ignored=True)
        try:
            wait_until_up(ros_node, proc)
            assert state(ros_node) == 'unconfigured'
            ros_node.spin(1.0)  # its executor waits for work now
            proc.kill(sig)
            assert proc.p.wait(5) in (0, -2, 130), proc.output()
        finally:
            proc.stop()
