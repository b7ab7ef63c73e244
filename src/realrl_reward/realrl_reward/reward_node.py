"""ROS 2 adapter of a reward function, chosen by ``type`` (``realrl_reward.reward_kinds``).

in:  /<robot>/description (latched, gives the state layout and camera names),
     /<robot>/observation
out: /<robot>/reward_label — the reward of arriving in that observation, and whether it
     is a success (the driver then ends the episode).
"""
from __future__ import annotations

from rclpy.node import Node

from realrl_common.config import ConfigError
from realrl_common.convert import from_f32, image_array
from realrl_common.descriptions import RobotDescriptions
from realrl_common.node_main import spin_node
from realrl_common.qos import COMMAND_QOS, SENSOR_QOS
from realrl_common.ros_params import read_config
from realrl_common.scheduling import serve_realtime
from realrl_interfaces.msg import Observation, RewardLabel, RobotDescription
from realrl_reward.node_config import RewardNodeConfig


class RewardNode(Node):
    """Labels each robot's observations with its reward function's reward and success."""

    def __init__(self):
        super().__init__('reward', automatically_declare_parameters_from_overrides=True)
        self.cfg = read_config(self, RewardNodeConfig)
        try:
            self.reward = self.cfg.reward_kind().factory()(self.cfg.reward_config())
        except ValueError as e:  # e.g. a classifier's weights file missing: say so and exit
            raise ConfigError(f'reward type {self.cfg.type!r}: {e}') from None
        self.layouts: dict[str, dict] = {}
        self.cameras: dict[str, list[str]] = {}
        self.failures = 0
        self._pubs = {}
        for rid in self.cfg.robot_ids:
            self._pubs[rid] = self.create_publisher(RewardLabel, f'/{rid}/reward_label',
                                                    COMMAND_QOS)
            self.create_subscription(Observation, f'/{rid}/observation', self._on_observation,
                                     SENSOR_QOS)
        self.descriptions = RobotDescriptions(self, self.cfg.robot_ids, self._on_description)
        serve_realtime(self.get_logger(), self.cfg.realtime_priority)

    def _on_description(self, msg: RobotDescription):
        layout = {n: (int(a), int(b)) for n, a, b in
                  zip(msg.state_names, msg.state_starts, msg.state_stops)}
        needed = self.cfg.needed_state_slices()
        missing = {p: s for p, s in needed.items() if s not in layout}
        if missing:
            self.get_logger().error(
                f'robot {msg.robot_id} has no state slice {sorted(missing.values())} (it has '
                f'{sorted(layout)}); set {" / ".join(missing)} to match')
            return
        self.layouts[msg.robot_id] = layout
        self.cameras[msg.robot_id] = list(msg.camera_names)

    def _on_observation(self, msg: Observation):
        layout = self.layouts.get(msg.robot_id)
        if not self.descriptions.known(msg.robot_id) or layout is None:
            return
        try:
            images = None
            if self.reward.needs_images:
                images = {cam: image_array(img) for cam, img in
                          zip(self.cameras[msg.robot_id], msg.images)}
            reward, success = self.reward.label(from_f32(msg.state), layout, images)
        except ValueError as e:
            self.failures += 1
            self.get_logger().error(f'cannot label {msg.robot_id} step {msg.step}: {e} '
                                    f'({self.failures} so far)', throttle_duration_sec=5.0)
            return
        self._pubs[msg.robot_id].publish(RewardLabel(
            robot_id=msg.robot_id, episode_id=msg.episode_id, step=msg.step,
            reward=float(reward), success=bool(success)))


def main(args=None):
    """Runs the reward node."""
    spin_node(RewardNode, 'reward', args)


if __name__ == '__main__':
    main()
