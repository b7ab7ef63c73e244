"""ROS 2 adapter of teleop: a person's device -> intervention actions for one robot.

in:  /<robot>/description (latched: the action bounds), /<robot>/observation
out: /<robot>/action (Action, intervention: true, only while engaged), ~/engaged (latched
     std_msgs/Bool), /<robot>/reward_label (RewardLabel, human: true) when a person marks the
     episode a success or a failure (keyboard c / n; a gamepad's or pedal's success_button /
     failure_button): the driver ends the episode there
Each observation that arrives while engaged is answered at once with the device's command,
with the observation's episode_id and step, as the policy answers it; the driver keeps a
person's action for a step over the policy's. Run it in a terminal for the keyboard:
  install/realrl_teleop/lib/realrl_teleop/teleop_node --ros-args -p robot_id:=arm0
"""
from __future__ import annotations

import time

from rclpy.node import Node
from std_msgs.msg import Bool

from realrl_common.config import ConfigError
from realrl_common.convert import from_f32, to_f32
from realrl_common.node_main import spin_node
from realrl_common.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from realrl_common.ros_params import read_config
from realrl_interfaces.msg import Action, Observation, RewardLabel, RobotDescription
from realrl_teleop.devices import AXIS_KEYS, DeviceError, open_device
from realrl_teleop.teleop_core import TeleopConfig, TeleopCore

REOPEN_EVERY_S = 2.0


class TeleopNode(Node):
    """Reads an input device and, while engaged, sends its actions to the robot as
    interventions."""

    def __init__(self):
        super().__init__('teleop', automatically_declare_parameters_from_overrides=True)
        self.cfg = read_config(self, TeleopConfig)
        try:
            self.device = self._open()
        except DeviceError as e:  # reported like a bad setting: exit status 2, the message
            raise ConfigError(f'device: {e}') from None
        self.core = TeleopCore(self.cfg.device, self.cfg.mapping)
        self.sent = 0
        self._state = None
        self._device_lost_at = 0.0
        rid = self.cfg.robot_id
        self._action_pub = self.create_publisher(Action, f'/{rid}/action', COMMAND_QOS)
        self._engaged_pub = self.create_publisher(Bool, '~/engaged', LATCHED_QOS)
        self._label_pub = self.create_publisher(RewardLabel, f'/{rid}/reward_label', COMMAND_QOS)
        self._seen: tuple[int, int] | None = None  # (episode, step) of the newest observation
        self.verdicts = 0
        self.create_subscription(RobotDescription, f'/{rid}/description', self._on_description,
                                 LATCHED_QOS)
        self.create_subscription(Observation, f'/{rid}/observation', self._on_observation,
                                 SENSOR_QOS)
        self.create_timer(1.0 / self.cfg.poll_hz, self._poll)
        self._engaged_pub.publish(Bool(data=False))
        self.get_logger().info(f'{self.device.describe()} for {rid}; {self._help()}')

    def _open(self):
        return open_device(self.cfg.device, self.cfg.device_path, self.cfg.key_hold_s)

    def _help(self) -> str:
        c = self.core
        if self.cfg.device == 'keyboard':
            pairs = ' '.join(f'{p}/{m}' for p, m in AXIS_KEYS)
            return (f'space engages and disengages; keys {pairs} push action axes 0, 1, 2, ... '
                    f'(+/-), arrows act as w s a d, x releases all; c marks the episode a '
                    f'success, n a failure')
        how = 'press' if c.engage_mode == 'toggle' else 'hold'
        marks = ''.join(f'; button {b} marks the episode a {"success" if ok else "failure"}'
                        for b, ok in c.verdict_buttons.items())
        return f'{how} button {c.engage_button} to take over{marks}'

    def _on_description(self, msg: RobotDescription):
        try:
            self.core.set_action_space(from_f32(msg.action_low), from_f32(msg.action_high))
        except ValueError as e:
            self.get_logger().error(f'{msg.robot_id}: {e}; no interventions until it is fixed')
            return
        self.get_logger().info(f'{msg.robot_id}: {msg.action_dim} action components '
                               f'({msg.action_units}), device axes {list(self.core.axes)}')

    def _poll(self):
        now = time.monotonic()
        if self.device is None:
            if now - self._device_lost_at > REOPEN_EVERY_S:
                self._device_lost_at = now
                try:
                    self.device = self._open()
                    self.get_logger().info(f'{self.device.describe()} is back')
                except DeviceError:
                    return
            else:
                return
        try:
            self._state = self.device.poll(now)
        except DeviceError as e:
            self.get_logger().error(f'{e}; disengaged, trying again every {REOPEN_EVERY_S:g}s')
            self.device.close()
            self.device, self._state, self._device_lost_at = None, None, now
            if self.core.engaged:
                self.core.disengage()
                self._engaged_pub.publish(Bool(data=False))
            return
        self._send_verdicts(self.core.verdicts(self._state))
        change = self.core.update(self._state)
        if change is not None:
            self._engaged_pub.publish(Bool(data=self.core.engaged))
            self.get_logger().info(f'{change}: ' + ('publishing interventions for '
                                                    f'{self.cfg.robot_id}' if self.core.engaged
                                                    else 'the policy acts again'))

    def _send_verdicts(self, verdicts: list[bool]) -> None:
        for success in verdicts:
            if self._seen is None:
                self.get_logger().warning('no observation of the robot yet: verdict ignored')
                continue
            episode, step = self._seen
            reward = self.cfg.success_reward if success else self.cfg.failure_reward
            self._label_pub.publish(RewardLabel(
                robot_id=self.cfg.robot_id, episode_id=episode, step=step, reward=reward,
                success=success, human=True))
            self.verdicts += 1
            self.get_logger().info(f'episode {episode} marked a '
                                   f'{"success" if success else "failure"}')

    def _on_observation(self, msg: Observation):
        if msg.robot_id != self.cfg.robot_id:
            return
        self._seen = (msg.episode_id, msg.step)
        self._poll()  # the freshest device state for this answer
        if self._state is None:
            return
        action = self.core.answer(self._state)
        if action is None:
            return
        out = Action(robot_id=msg.robot_id, episode_id=msg.episode_id, step=msg.step,
                     action=to_f32(action), policy_version=0, intervention=True)
        out.header.stamp = self.get_clock().now().to_msg()
        self._action_pub.publish(out)
        self.sent += 1

    def close(self):
        """Give the terminal back as it was (echo, line editing)."""
        if self.device is not None:
            self.device.close()
            self.device = None


def main(args=None):
    """Runs the teleop node."""
    spin_node(TeleopNode, 'teleop', args)


if __name__ == '__main__':
    main()
