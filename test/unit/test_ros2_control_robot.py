"""The ros2_control robot's core against the mock hardware of ros2_control_peer, in
simulated time: limits, rate limits, hold, reset, stale joint states, config errors."""
import numpy as np
import pytest
from realrl_sim_peers.ros2_control_peer import MockJointHardware, MockRobotConfig

from realrl_common.config import ConfigError, build_config
from realrl_driver.robots.ros2_control.config import Ros2ControlConfig, Ros2ControlDriverConfig
from realrl_driver.robots.ros2_control.robot import (
    JointReading,
    ResetTimeout,
    Ros2ControlArm,
    StaleJointStates,
    readiness_problem,
)

JOINTS = ('j1', 'j2', 'j3')
LOWER, UPPER = (-1.0, -0.5, -2.0), (1.0, 0.5, 2.0)
PERIOD = 0.05


class SimPort:
    """The JointPort over MockJointHardware, stepped at 200 Hz in simulated time. Every
    command is recorded with the measured position it was computed from."""

    def __init__(self, hw: MockJointHardware):
        self.hw, self.t = hw, 0.0
        self.stamp = 0.0
        self.frozen = False  # True: joint states stop arriving
        self.sent: list[tuple[np.ndarray, np.ndarray]] = []

    def read(self):
        return JointReading(self.hw.position.copy(), self.hw.velocity.copy(),
                            self.t - self.stamp)

    def write(self, command):
        self.sent.append((np.array(command), self.hw.position.copy()))
        self.hw.command(command)

    def wait(self, seconds):
        for _ in range(max(1, round(seconds * 200))):
            self.hw.step(1 / 200)
            self.t += 1 / 200
            if not self.frozen:
                self.stamp = self.t

    def now(self):
        return self.t


def make(interface='position', lag_s=0.0, initial=(0.0, 0.0, 0.0), **kw):
    hw = MockJointHardware(MockRobotConfig(JOINTS, LOWER, UPPER, initial, interface, lag_s,
                                           max_velocity=1.0, update_rate=200))
    cfg = Ros2ControlConfig(joints=JOINTS, lower_limits=LOWER, upper_limits=UPPER,
                            command_interface=interface, max_step=(0.05,), max_velocity=(1.0,),
                            **kw)
    port = SimPort(hw)
    return Ros2ControlArm(cfg, port, PERIOD), port, hw


def run(robot, port, action, steps):
    for _ in range(steps):
        state = robot.apply(action)
        port.wait(PERIOD)
    return state


@pytest.mark.parametrize('lag_s', [0.0, 0.08])
def test_position_targets_stay_inside_limits_and_the_rate_limit(lag_s):
    robot, port, hw = make(lag_s=lag_s)
    assert (robot.state_dim, robot.action_dim) == (9, 3)
    assert list(robot.observation_layout) == ['joint_pos', 'joint_vel', 'joint_target']
    state = run(robot, port, [1.0, -1.0, 0.3], 80)  # far past j1's and j2's limits
    for target, measured in port.sent:
        assert np.all(target >= np.array(LOWER)) and np.all(target <= np.array(UPPER))
        assert np.all(np.abs(target - measured) <= 0.05 + 1e-12)
    assert hw.counters['out_of_limits'] == 0
    np.testing.assert_allclose(hw.position[:2], [1.0, -0.5], atol=0.02)  # at the limits
    assert hw.position[2] > 0.3  # j3 moved 0.015 per step, unhindered
    np.testing.assert_allclose(state[6:], port.sent[-1][0], atol=1e-6)  # the target


def test_velocity_commands_slow_down_before_a_limit():
    robot, port, hw = make('velocity')
    assert 'joint_vel_cmd' in robot.observation_layout
    run(robot, port, [1.0, -1.0, 0.0], 60)
    for command, measured in port.sent:
        assert np.all(np.abs(command) <= 1.0 + 1e-12)
        reach = measured + command * 2 * PERIOD  # where the command leads within its lifetime
        assert np.all(reach <= np.array(UPPER) + 1e-9) and np.all(reach >= np.array(LOWER) - 1e-9)
    assert hw.counters['out_of_limits'] == hw.counters['too_fast'] == 0
    assert hw.position[0] == pytest.approx(1.0, abs=0.02) and hw.position[1] > -0.5
    robot.apply([-0.5, 0.5, 0.0])  # away from the limits: allowed at once
    np.testing.assert_allclose(port.sent[-1][0], [-0.5, 0.5, 0.0])


def test_non_finite_and_oversized_actions_never_move_past_the_step():
    robot, port, hw = make()
    robot.apply([np.nan, np.inf, 7.0])  # the guard refuses these; the core defends anyway
    target, measured = port.sent[-1]
    np.testing.assert_allclose(target - measured, [0.0, 0.0, 0.05])
    with pytest.raises(ValueError, match='3 values'):
        robot.apply([0.1, 0.2])


def test_settle_s_reads_the_state_after_the_command_took_effect():
    robot, _, _ = make()
    assert robot.apply([1.0, 0.0, 0.0])[0] == 0.0  # read at once: not there yet
    robot, _, _ = make(settle_s=0.02)
    assert robot.apply([1.0, 0.0, 0.0])[0] == pytest.approx(0.05)


def test_hold_keeps_the_measured_pose_or_stops():
    robot, port, _ = make(lag_s=0.2)
    run(robot, port, [1.0, 1.0, 1.0], 3)
    robot.hold()
    target, measured = port.sent[-1]
    np.testing.assert_allclose(target, measured)
    vrobot, vport, _ = make('velocity')
    run(vrobot, vport, [1.0, 0.0, 0.0], 2)
    vrobot.hold()
    np.testing.assert_array_equal(vport.sent[-1][0], [0.0, 0.0, 0.0])


@pytest.mark.parametrize('interface', ['position', 'velocity'])
def test_reset_goes_home_in_rate_limited_steps(interface):
    home = (0.6, -0.4, 1.0)
    robot, port, hw = make(interface, lag_s=0.03, home=home, reset_tolerance=0.01)
    beats = []
    robot.on_wait = lambda: beats.append(port.t)
    state = robot.reset(seed=0)
    np.testing.assert_allclose(state[:3], home, atol=0.01)
    assert len(beats) >= 20  # 1.0 rad at 0.05 per period: many periods, each a heartbeat
    assert hw.counters['out_of_limits'] == 0
    if interface == 'position':
        assert all(np.all(np.abs(t - m) <= 0.05 + 1e-12) for t, m in port.sent)
    else:
        np.testing.assert_array_equal(port.sent[-1][0], 0.0)  # stopped at home


def test_reset_timeout_holds_and_names_the_joints():
    robot, port, hw = make(home=(0.9, 0.0, 0.0), reset_timeout_s=0.5)
    hw.lower[0] = hw.upper[0] = 0.0  # j1 is blocked (hard stop at 0)
    with pytest.raises(ResetTimeout, match=r"'j1'.*forward_position_controller"):
        robot.reset(seed=0)
    assert port.t < 1.0  # bounded
    np.testing.assert_allclose(port.sent[-1][0], hw.position)  # held where it is


def test_stale_joint_states_hold_and_raise():
    robot, port, _ = make('velocity', stale_after_s=0.2)
    run(robot, port, [0.5, 0.0, 0.0], 2)
    assert robot.problem() == ''
    port.frozen = True
    port.wait(0.3)
    assert 'stale_after_s' in robot.problem() and '/joint_states' in robot.problem()
    with pytest.raises(StaleJointStates):
        robot.apply([0.5, 0.0, 0.0])
    np.testing.assert_array_equal(port.sent[-1][0], 0.0)  # the hold, not the action


def test_stale_joint_states_send_no_position_hold_and_resume_from_a_fresh_reading():
    """A controller restarted with the arm elsewhere must not receive the last known pose."""
    robot, port, hw = make(stale_after_s=0.2)
    run(robot, port, [1.0, 0.0, 0.0], 4)
    port.frozen = True
    port.wait(0.3)
    sent = len(port.sent)
    hw.position[:] = hw.target[:] = [-0.8, 0.3, 1.5]  # restarted elsewhere
    for _ in range(5):
        robot.hold()
        with pytest.raises(StaleJointStates):
            robot.apply([1.0, 0.0, 0.0])
    assert len(port.sent) == sent  # nothing while stale
    port.frozen = False
    port.wait(0.01)
    state = robot.apply([1.0, -1.0, 0.0])
    target, measured = port.sent[-1]
    np.testing.assert_allclose(measured, [-0.8, 0.3, 1.5])
    np.testing.assert_allclose(target, [-0.75, 0.25, 1.5])
    np.testing.assert_allclose(state[6:], target)


def test_a_start_outside_the_limits_is_refused():
    robot, _, _ = make(initial=(0.0, 0.9, 0.0))  # limits say j2 in [-0.5, 0.5]
    robot.lower[1], robot.upper[1] = -0.5, 0.5
    assert "'j2': 0.9" in robot.start_problem()


def test_readiness_problems_name_the_topic_joint_and_fix():
    cfg = Ros2ControlConfig(joints=JOINTS, lower_limits=LOWER, upper_limits=UPPER)
    assert readiness_problem(cfg, set(JOINTS) | {'gripper'}, 1, 1) == ''
    msg = readiness_problem(cfg, None, 0, 0)
    assert 'no joint states on /joint_states (nobody publishes it)' in msg
    assert '/forward_position_controller/commands' in msg and '--set-state active' in msg
    msg = readiness_problem(cfg, None, 0, 0, ('/arm0/joint_states',),
                            ('/arm0/forward_position_controller/commands',))
    assert "set ros2_control.joint_states_topic (JointState topics in the graph: " \
           "['/arm0/joint_states'])" in msg
    assert "command_topic (command topics in the graph: " \
           "['/arm0/forward_position_controller/commands'])" in msg
    msg = readiness_problem(cfg, {'j1', 'j2'}, 1, 1)
    assert "joints ['j3'] are not in /joint_states" in msg
    vel = Ros2ControlConfig(joints=('a',), lower_limits=(0,), upper_limits=(1,),
                            command_interface='velocity', controller='my_vel')
    assert '/my_vel/commands' in readiness_problem(vel, {'a'}, 1, 0)


@pytest.mark.parametrize('values, match', [
    ({}, 'ros2_control.joints must list'),
    ({'joints': ['a', 'b'], 'lower_limits': [0.0], 'upper_limits': [1.0, 1.0]},
     'lower_limits must have one finite value per joint'),
    ({'joints': ['a'], 'lower_limits': [1.0], 'upper_limits': [0.0]}, 'below upper_limits'),
    ({'joints': ['a'], 'lower_limits': [0.0], 'upper_limits': [1.0], 'home': [2.0]},
     'home is outside the limits'),
    ({'joints': ['a'], 'lower_limits': [0.0], 'upper_limits': [1.0],
      'command_interface': 'effort'}, 'command_interface must be one of'),
    ({'joints': ['a'], 'lower_limits': [0.0], 'upper_limits': [1.0], 'max_step': [0.5]},
     'max_step is more than max_velocity allows'),
    ({'joints': ['a'], 'lower_limits': [0.0], 'upper_limits': [1.0], 'max_step': [0.0]},
     'max_step must be one value > 0'),
    ({'joints': ['a'], 'lower_limits': [0.0], 'upper_limits': [1.0], 'stale_after_s': 0.01},
     'stale_after_s .* must be at least one control period'),
])
def test_bad_configs_name_the_field(values, match):
    with pytest.raises(ConfigError, match=match):
        build_config(Ros2ControlDriverConfig, {'control_hz': 20.0, 'ros2_control': values})


def test_a_good_config_builds_with_default_controller_topics():
    cfg = build_config(Ros2ControlDriverConfig, {'ros2_control': {
        'joints': ['a', 'b'], 'lower_limits': [-1, -1], 'upper_limits': [1, 1],
        'command_interface': 'velocity'}})
    assert cfg.ros2_control.commands_topic == '/forward_velocity_controller/commands'
    with pytest.raises(ConfigError, match='cameras'):
        build_config(Ros2ControlDriverConfig, {'cameras': ['wrist'], 'ros2_control': {
            'joints': ['a'], 'lower_limits': [-1], 'upper_limits': [1]}})


def test_the_mock_hardware_counts_every_command_past_its_limits():
    """What the ROS test's 'zero violations' rests on: the peer does see violations."""
    hw = MockJointHardware(MockRobotConfig(JOINTS, LOWER, UPPER))
    assert hw.command([1.2, 0.0, 0.0]) and hw.command([0.0, np.nan, 0.0])
    assert hw.command([0.0, 0.0]) and not hw.command([1.0, 0.5, -2.0])  # at the limits: fine
    assert (hw.counters['out_of_limits'], hw.counters['non_finite'],
            hw.counters['wrong_length']) == (1, 1, 1)
    vel = MockJointHardware(MockRobotConfig(JOINTS, LOWER, UPPER, (1.0, 0.0, 0.0), 'velocity',
                                            max_velocity=1.0))
    assert vel.command([0.1, 0.0, 0.0]) and vel.command([0.0, 2.0, 0.0])
    assert not vel.command([-0.5, 0.5, 0.0])
    assert (vel.counters['out_of_limits'], vel.counters['too_fast']) == (1, 1)


def test_graphs_know_the_driver():
    from realrl_common.plugins import node_kind, robot_kind
    kind = node_kind('realrl_driver', 'ros2_control_driver')
    assert (kind.role, kind.config, kind.robot) == ('driver', Ros2ControlDriverConfig,
                                                   'ros2_control')
    assert robot_kind('ros2_control').config is Ros2ControlDriverConfig
