"""The ur_rtde UR robot against the simulated controller, and the real SDK with no controller."""
import inspect
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from realrl_common.config import ConfigError, build_config
from realrl_driver.core.episode_loop import EpisodeLoop, LoopConfig
from realrl_driver.robots.ur_rtde import sim as ur_rtde_sim
from realrl_driver.robots.ur_rtde.config import UR5E_HOME, URConfig, URDriverConfig
from realrl_driver.robots.ur_rtde.robot import URConnectionError, URFault, URRtdeRobot, arm_fault

HZ = 20.0
DT = 1.0 / HZ


@pytest.fixture
def sim():
    controller = ur_rtde_sim.serve('sim_test')
    yield controller
    ur_rtde_sim.unserve('sim_test')


def make(sim, **ur):
    cfg = URConfig(backend='sim', host=sim.host, settle_fraction=0.0, **ur)
    robot = URRtdeRobot(cfg, HZ)
    robot.reset(0)
    return robot


def servo_targets(sim):
    return [c for c in sim.commands if c.name == 'servoJ']


def check_every_command(sim, cfg: URConfig):
    """Every servo target the controller received was inside the driver's limits."""
    assert sim.violations == []
    cmds = servo_targets(sim)
    assert cmds, 'no servo command was sent'
    for c in cmds:
        q = np.array(c.args[0])
        assert np.all(np.isfinite(q))
        assert np.all(q >= np.array(cfg.joint_low) - 1e-12)
        assert np.all(q <= np.array(cfg.joint_high) + 1e-12)
        assert np.max(np.abs(q - c.q)) <= cfg.max_joint_speed * DT + 1e-9
        tcp = sim.tcp_pose(q)[:3]
        assert np.linalg.norm(tcp - c.tcp[:3]) <= cfg.max_tcp_speed * DT + 1e-9
        assert c.args[3] == pytest.approx(DT)
        # The TCP target is in the box, or (after a servo overshoot) no further out than the arm.
        low, high = np.array(cfg.workspace_low), np.array(cfg.workspace_high)
        assert box_distance(tcp, low, high) <= box_distance(c.tcp[:3], low, high) + 1e-9
    return cmds


def box_distance(p, low, high):
    return float(np.linalg.norm(p - np.clip(p, low, high)))


def test_joint_mode_moves_and_never_leaves_the_joint_limits(sim):
    low = (-0.3, -2.0, 1.2, -2.0, -2.0, -0.3)
    high = (0.3, -1.2, 2.0, -1.2, -1.2, 0.3)
    robot = make(sim, joint_low=low, joint_high=high, workspace_low=(-1, -1, -1),
                 workspace_high=(1, 1, 1))
    start = robot.observe()
    rng = np.random.default_rng(0)
    for k in range(120):
        action = np.ones(6) if k < 60 else rng.uniform(-1, 1, 6)
        state = robot.apply(action)
        assert state.shape == (18,) and state.dtype == np.float32
    assert robot.observe()[0] > start[0] + 0.05  # it moved
    check_every_command(sim, robot.cfg)
    q_max = np.max([c.args[0] for c in servo_targets(sim)], axis=0)
    assert q_max[0] == pytest.approx(0.3)  # pushed against the limit, held there


def test_joint_acceleration_is_limited_between_steps(sim):
    robot = make(sim, max_joint_step_rad=0.05, max_joint_speed=1.0, max_joint_acceleration=2.0)
    for k in range(30):
        robot.apply(np.full(6, 1.0 if k % 2 else -1.0))  # asks for 2 rad/s reversals
    cmds = check_every_command(sim, robot.cfg)
    velocities = [(np.array(c.args[0]) - c.q) / DT for c in cmds]
    changes = [np.max(np.abs(b - a)) for a, b in zip(velocities, velocities[1:])]
    assert max(changes) <= 2.0 * DT + 1e-9


@pytest.mark.parametrize('bad', [[np.nan] * 6, [0, 0, np.inf, 0, 0, 0], [0.1] * 5, [0.1] * 7])
def test_non_finite_or_misshaped_actions_never_reach_the_controller(sim, bad):
    robot = make(sim)
    sent = len(sim.commands)
    with pytest.raises(ValueError, match='action must'):
        robot.apply(np.array(bad))
    assert len(sim.commands) == sent


def test_tcp_mode_keeps_the_tcp_in_the_box_and_the_tool_orientation(sim):
    robot = make(sim, action_mode='tcp_delta', max_tcp_step_m=0.02,
                 workspace_low=(0.3, 0.0, 0.30), workspace_high=(0.6, 0.3, 0.50))
    start = robot.observe()
    for action in ([0, 0, -1.0],) * 40 + ([1.0, 1.0, 0],) * 40 + ([-1.0, -1.0, 1.0],) * 60:
        robot.apply(np.array(action))
        tcp = robot.observe()[12:15]
        assert np.all(tcp >= np.array([0.3, 0.0, 0.30]) - 2e-3)  # overshoot of the servo only
        assert np.all(tcp <= np.array([0.6, 0.3, 0.50]) + 2e-3)
    cmds = check_every_command(sim, robot.cfg)
    z = [sim.tcp_pose(c.args[0])[2] for c in cmds]
    assert min(z) == pytest.approx(0.30, abs=2e-3)  # it went down to the floor of the box
    rot = robot.observe()[15:18]
    assert np.linalg.norm(rot - start[15:18]) < 0.05


def test_joint_mode_does_not_carry_the_tcp_out_of_the_box(sim):
    robot = make(sim, workspace_low=(0.3, -0.1, 0.40), workspace_high=(0.6, 0.3, 0.60))
    for _ in range(80):
        robot.apply(np.array([0, 1.0, 0, 0, 0, 0]))  # shoulder lift: the TCP goes down
    cmds = check_every_command(sim, robot.cfg)  # checks the box, too
    assert min(sim.tcp_pose(c.args[0])[2] for c in cmds) == pytest.approx(0.40, abs=5e-3)
    assert robot.counters['steps_not_sent'] > 0  # once at the floor, steps were refused


def test_hold_reset_and_estop_through_the_episode_loop(sim):
    robot = make(sim)
    loop = EpisodeLoop(LoopConfig(control_hz=HZ, episode_max_steps=5), robot)
    obs = loop.tick(0.0).observation
    assert sim.commands[-1].name == 'moveJ'  # reset moved home
    assert np.allclose(obs.state[:6], robot.cfg.home_q, atol=2e-3)
    assert loop.on_action(np.full(6, 0.5), obs.episode_id, obs.step)
    assert loop.tick(0.05).applied is not None
    assert sim.commands[-1].name == 'servoJ'
    robot.hold()
    assert sim.commands[-1].name == 'servoStop' and np.max(np.abs(sim.qd)) < 1e-2
    loop.estop(True)
    assert sim.commands[-1].name == 'servoStop'
    n = len(sim.commands)
    assert not loop.on_action(np.full(6, 0.5), loop.obs.episode_id, loop.obs.step)
    loop.tick(0.1)
    assert len(sim.commands) == n  # e-stopped: nothing reaches the controller


def test_protective_stop_is_reported_and_stops_commands(sim):
    robot = make(sim)
    robot.apply(np.zeros(6))
    robot.ctrl.triggerProtectiveStop()  # the SDK call a real controller also has
    n = len(sim.commands)
    with pytest.raises(URFault, match=r'sim_test: protective stop .* teach pendant'):
        robot.apply(np.full(6, 0.5))
    with pytest.raises(URFault, match='protective stop'):
        robot.reset(1)
    assert len(sim.commands) == n


def test_emergency_stop_and_power_off_are_named(sim):
    sim.power_off()
    with pytest.raises(URFault, match='robot mode 3 POWER_OFF, not RUNNING; power it on'):
        make(sim)
    sim.robot_mode = ur_rtde_sim.ROBOT_MODE_RUNNING
    robot = make(sim)
    sim.press_emergency_stop()
    with pytest.raises(URFault, match='emergency stop .* release the e-stop'):
        robot.apply(np.zeros(6))


def test_a_home_the_arm_cannot_reach_fails_reset_and_stops(sim):
    # Forearm pointing into the floor: the move is blocked and reset fails, bounded.
    home = (0.0, 0.0, 1.5708, -1.5708, -1.5708, 0.0)
    robot = URRtdeRobot(URConfig(backend='sim', host=sim.host, settle_fraction=0.0,
                                 home_q=home, reset_timeout_s=0.2), HZ)
    with pytest.raises(URFault, match='home_q'):
        robot.reset(0)


def test_arm_outside_the_configured_joint_limits_is_refused_at_connect(sim):
    with pytest.raises(URFault, match=r'joints \[0\] .* outside ur.joint_low/joint_high'):
        URRtdeRobot(URConfig(backend='sim', host=sim.host, joint_low=(0.5, -3, -3, -3, -3, -3),
                             joint_high=(1.0, 0, 3, 3, 3, 3),
                             home_q=(0.7, -1.5, 1.5, -1.5, -1.5, 0)), HZ)


def test_unknown_simulated_host_fails_like_a_missing_controller(sim):
    with pytest.raises(URConnectionError, match='no UR controller at nobody .*port 30004'):
        URRtdeRobot(URConfig(backend='sim', host='nobody'), HZ)


def closed_port_on_localhost():
    with socket.socket() as s:
        if s.connect_ex(('127.0.0.1', 30004)) == 0:
            pytest.skip('something listens on 127.0.0.1:30004')


@pytest.mark.timeout(20)  # both paths must fail at once, not hang
@pytest.mark.parametrize('probe_s', [0.0, 1.0])
def test_real_sdk_with_no_controller_names_host_port_and_fix(probe_s):
    closed_port_on_localhost()
    cfg = URConfig(backend='real', host='127.0.0.1', connect_timeout_s=probe_s)
    with pytest.raises(URConnectionError) as err:
        URRtdeRobot(cfg, HZ)
    text = str(err.value)
    assert 'no UR controller at 127.0.0.1 (RTDE port 30004)' in text
    assert 'remote control' in text and 'ur.backend: sim' in text
    if probe_s == 0:  # the real SDK itself was asked, and its words are passed on
        assert 'ur_rtde: Error: Could not connect to: 127.0.0.1 at 30004' in text


@pytest.mark.parametrize('ur, key', [
    ({'backend': 'ros'}, 'backend'),
    ({'backend': 'real'}, 'host is empty'),
    ({'backend': 'sim', 'action_mode': 'twist'}, 'action_mode'),
    ({'backend': 'sim', 'home_q': [0, 1, 0, 0, 0, 0]}, 'home_q'),
    ({'backend': 'sim', 'joint_low': [0] * 5}, 'joint_low'),
    ({'backend': 'sim', 'workspace_low': [1, 0, 0]}, 'workspace_low'),
    ({'backend': 'sim', 'max_joint_speed': 5.0}, 'max_joint_speed'),
    ({'backend': 'sim', 'servo_gain': 50.0}, 'servo_gain'),
    ({'backend': 'sim', 'max_tcp_speed': -1.0}, 'max_tcp_speed'),
    ({'backend': 'sim', 'hots': 'x'}, "did you mean 'ur.host'"),
])
def test_bad_config_names_the_field(ur, key):
    with pytest.raises(ConfigError, match=key):
        build_config(URDriverConfig, {'ur': ur})


def test_driver_config_refuses_cameras_and_fast_clocks():
    with pytest.raises(ConfigError, match='cameras'):
        build_config(URDriverConfig, {'cameras': ['front'], 'ur': {'backend': 'sim'}})
    with pytest.raises(ConfigError, match='control_hz'):
        build_config(URDriverConfig, {'control_hz': 500.0, 'ur': {'backend': 'sim'}})


def _real_signature(method) -> tuple[list[str], str]:
    """(parameter names after self, return type) from a pybind11 docstring."""
    first = method.__doc__.strip().splitlines()[0]
    if '(*args, **kwargs)' in first:  # overloaded: the single-target form is the second
        first = [ln for ln in method.__doc__.splitlines() if ln.startswith('2. ')][0][3:]
    params, ret = first.split('(', 1)[1].rsplit(') -> ', 1)
    names = [p.split(':')[0] for p in params.split(', ')[1:] if p]
    return names, ret.strip()


@pytest.mark.parametrize('sim_cls, module', [
    (ur_rtde_sim.RTDEControlInterface, 'rtde_control'),
    (ur_rtde_sim.RTDEReceiveInterface, 'rtde_receive')])
def test_the_simulated_peer_has_the_real_sdk_methods(sim_cls, module):
    real_cls = getattr(pytest.importorskip(module), sim_cls.__name__)
    for name, fn in inspect.getmembers(sim_cls, inspect.isfunction):
        if name.startswith('_') and name != '__init__':
            continue
        real = getattr(real_cls, name, None)
        assert real is not None, f'{module}.{sim_cls.__name__} has no {name}'
        sig = inspect.signature(fn)
        names, ret = _real_signature(real)
        ours = list(sig.parameters)[1:]
        assert len(ours) == len(names), name
        assert all(a == b for a, b in zip(ours, names) if not b.startswith('arg')), name
        assert sig.return_annotation == ret, name


@pytest.fixture
def wire_controller():
    """A simulated controller in another process, on the wire at 127.0.x.y:30004."""
    host = f'127.0.{os.getpid() % 200 + 20}.{os.getpid() % 250 + 2}'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, '-m', 'realrl_sim_peers.ur_rtde_wire', host],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == 'ready'

        def tell(line):
            proc.stdin.write(line + '\n')
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == 'done'
        yield host, tell
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.timeout(30)
def test_the_real_receive_sdk_reads_the_simulated_controller_over_rtde(wire_controller):
    """The real rtde_receive decodes the simulated arm: joints, TCP, and every mode the
    driver checks, with the driver's own words for each."""
    rtde_receive = pytest.importorskip('rtde_receive')
    host, tell = wire_controller
    recv = rtde_receive.RTDEReceiveInterface(host)

    def settled(check):  # the stream sends every 4 ms
        for _ in range(100):
            if check():
                return True
            time.sleep(0.01)
        return False
    try:
        assert recv.getActualQ() == pytest.approx(list(UR5E_HOME))
        assert arm_fault(recv, None, host) == ''
        tell('move 0.4 -1.5708 1.5708 -1.5708 -1.5708 0.0')
        assert settled(lambda: abs(recv.getActualQ()[0] - 0.4) < 1e-3)
        assert len(recv.getActualTCPPose()) == 6
        tell('protective_stop')
        assert settled(lambda: 'protective stop (safety mode 3' in arm_fault(recv, None, host))
        tell('unlock')
        assert settled(lambda: arm_fault(recv, None, host) == '')
        tell('estop')
        assert settled(lambda: 'emergency stop' in arm_fault(recv, None, host))
        tell('unlock')
        tell('power_off')
        assert settled(lambda: 'robot mode 3 POWER_OFF' in arm_fault(recv, None, host))
    finally:
        recv.disconnect()
