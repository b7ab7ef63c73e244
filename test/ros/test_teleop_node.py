"""Teleop over real DDS: a MuJoCo arm driver and the teleop node, driven by keystrokes
written into a real pseudo-terminal."""
import glob
import os
import termios

import numpy as np
import pytest
from ros_env import Proc, executable, wait_for
from std_msgs.msg import Bool

from realrl_common.convert import from_f32
from realrl_common.lifecycle import bring_up
from realrl_common.qos import COMMAND_QOS, DATA_QOS, LATCHED_QOS, SENSOR_QOS
from realrl_interfaces.msg import Action, Observation, RewardLabel, RobotDescription, Transition


def test_keyboard_takes_over_moves_the_arm_and_hands_back(ros_node, tmp_path):
    node = ros_node
    master, slave = os.openpty()
    driver = Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args',
                   '-r', '__ns:=/arm0', '-p', 'replay_wait_s:=0.0', '-p', 'control_hz:=20.0',
                   '-p', 'episode_max_steps:=500'], tmp_path / 'driver.log')
    teleop = Proc([executable('realrl_teleop', 'teleop_node'), '--ros-args',
                   '-p', 'robot_id:=arm0', '-p', 'device:=keyboard',
                   '-p', f'device_path:={os.ttyname(slave)}', '-p', 'mapping.speed:=1.0'],
                  tmp_path / 'teleop.log')
    try:
        observations, actions, transitions, engaged, descs = [], [], [], [], []
        labels = node.create_publisher(RewardLabel, '/arm0/reward_label', COMMAND_QOS)

        def on_observation(obs):  # the reward node's part: label every observation
            observations.append(obs)
            labels.publish(RewardLabel(robot_id='arm0', episode_id=obs.episode_id,
                                       step=obs.step, reward=0.0, success=False))
        node.create_subscription(Observation, '/arm0/observation', on_observation, SENSOR_QOS)
        node.create_subscription(Action, '/arm0/action', actions.append, COMMAND_QOS)
        node.create_subscription(Transition, '/arm0/transition', transitions.append, DATA_QOS)
        node.create_subscription(Bool, '/teleop/engaged', engaged.append, LATCHED_QOS)
        node.create_subscription(RobotDescription, '/arm0/description', descs.append, LATCHED_QOS)

        assert bring_up(node, '/arm0/driver', node.spin,
                        alive=lambda: driver.p.poll() is None) == '', driver.output()
        # the teleop node holds the terminal in cbreak mode once its device is open
        assert wait_for(lambda: not termios.tcgetattr(slave)[3] & termios.ICANON, 20), \
            teleop.output()
        assert wait_for(lambda: engaged and descs and 'action components' in teleop.output(),
                        20, spin=node.spin), teleop.output()
        assert engaged[-1].data is False

        # Disengaged: keys move nothing and the teleop node sends nothing.
        for _ in range(10):
            os.write(master, b'w')
            node.spin(0.1)
        assert actions == [] and transitions == []

        # Engaged (space), w held (its key repeat): +x end-effector motion, flagged.
        ee = slice(*[(a, b) for n, a, b in zip(descs[-1].state_names, descs[-1].state_starts,
                                                descs[-1].state_stops) if n == 'ee_pos'][0])
        start = from_f32(observations[-1].state)[ee]
        os.write(master, b' ')
        assert wait_for(lambda: engaged[-1].data, 10, spin=node.spin), teleop.output()
        for _ in range(15):
            os.write(master, b'w')
            node.spin(0.1)
        assert wait_for(lambda: len(transitions) >= 5, 10, spin=node.spin), driver.output()
        assert actions and all(a.intervention and a.robot_id == 'arm0' for a in actions)
        sent = np.array([from_f32(a.action) for a in actions])
        assert np.all(sent <= 1.0) and np.all(sent >= -1.0)  # the arm's bounds
        assert np.any(sent[:, 0] == 1.0) and np.all(sent[:, 1:] == 0.0)
        assert all(t.intervention for t in transitions)
        moved = from_f32(observations[-1].state)[ee] - start
        assert moved[0] > 0.03 and abs(moved[0]) > 3 * abs(moved[1]), moved
        # every action answers an observation the driver sent (its episode and step)
        seen = {(o.episode_id, o.step) for o in observations}
        assert all((a.episode_id, a.step) in seen for a in actions)

        # Disengaged again: the teleop node falls silent, the robot waits for the policy.
        os.write(master, b' ')
        assert wait_for(lambda: not engaged[-1].data, 10, spin=node.spin), teleop.output()
        node.spin(0.3)
        count, steps = len(actions), len({t.seq for t in transitions})
        for _ in range(8):
            os.write(master, b'w')
            node.spin(0.1)
        # (the driver re-sends transitions nobody acknowledges: count distinct ones)
        assert len(actions) == count and len({t.seq for t in transitions}) <= steps + 1
    finally:
        teleop.stop()
        driver.stop()
        os.close(master)
        os.close(slave)
    assert 'engaged: publishing interventions for arm0' in teleop.output()


def test_an_absent_device_ends_the_node_with_what_was_looked_for(ros_domain, tmp_path):
    if glob.glob('/dev/input/js*'):
        pytest.skip('this machine has a joystick')
    proc = Proc([executable('realrl_teleop', 'teleop_node'), '--ros-args',
                 '-p', 'device:=gamepad'], tmp_path / 'teleop.log')
    try:
        assert wait_for(lambda: proc.p.poll() is not None, 20), proc.output()
    finally:
        code = proc.stop()
    assert code == 2, proc.output()
    assert 'bad configuration: device: gamepad: no joystick device' in proc.output()
