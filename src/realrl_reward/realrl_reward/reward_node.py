"""ROS 2 adapter of the rule-based reach reward.

in:  /<robot>/description (latched, gives the state layout), /<robot>/observation
out: /<robot>/reward_label — the reward of arriving in that observation, and whether it
     is a success (the driver then ends the episode).
"""
from __future__ import annotations

from rclpy.node import Node

from realrl_common.convert import from_f32
from realrl_common.descriptions import RobotDescriptions
from realrl_common.node_main import spin_node
from realrl_common.qos import COMMAND_QOS, SENSOR_QOS
from realrl_common.ros_params import read_config
from realrl_interfaces.msg import Observation, RewardLabel, RobotDescription
from realrl_reward.node_config import RewardNodeConfig
from realrl_reward.reach_reward import ReachReward


class RewardNode(Node):
    """Labels each robot's observations with the reach reward and success."""

    def __init__(self):
        super().__init__('reward', automatically_declare_parameters_from_overrides=True)
        self.cfg = read_config(self, RewardNodeConfig)
        self.reward = ReachReward(self.cfg.reach)
        self.layouts: dict[str, dict] = {}
        self.failures = 0
        self._pubs = {}
        for rid in self.cfg.robot_ids:
            self._pubs[rid] = self.create_publisher(RewardLabel, f'/{rid}/reward_label',
                                                    COMMAND_QOS)
            self.create_subscription(Observation, f'/{rid}/observation', self._on_observation,
                                     SENSOR_QOS)
        self.descriptions = RobotDescriptions(self, self.cfg.robot_ids, self._on_description)

    def _on_description(self, msg: RobotDescription):
        layout = {n: (int(a), int(b)) for n, a, b in
                  zip(msg.state_names, msg.state_starts, msg.state_stops)}
        missing = {self.cfg.reach.ee_key, self.cfg.reach.target_key} - set(layout)
        if missing:
            self.get_logger().error(
                f'robot {msg.robot_id} has no state slice {sorted(missing)} (it has '
                f'{sorted(layout)}); set reach.ee_key / reach.target_key to match')
            return
        self.layouts[msg.robot_id] = layout

    def _on_observation(self, msg: Observation):
        layout = self.layouts.get(msg.robot_id)
        if not self.descriptions.known(msg.robot_id) or layout is None:
            return
        try:
            reward, success = self.reward.label(from_f32(msg.state), layout)
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
