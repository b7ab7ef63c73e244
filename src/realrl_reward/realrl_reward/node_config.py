"""The reward node's parameters (no ROS imports: graphs validate them without rclpy)."""
from __future__ import annotations

from dataclasses import dataclass, field

from realrl_common.config import check
from realrl_common.plugins import NodeKind
from realrl_reward.reach_reward import ReachRewardConfig


@dataclass(frozen=True)
class RewardNodeConfig:
    """Parameters of the reward node."""

    robot_ids: tuple[str, ...] = ('arm0',)
    """Robots whose observations this node labels."""
    reach: ReachRewardConfig = field(default_factory=ReachRewardConfig)
    """The reach reward (mode, success radius, layout keys)."""

    def __post_init__(self):
        check(len(self.robot_ids) > 0, 'robot_ids must name at least one robot, e.g. [arm0]')

    def needed_state_slices(self) -> dict[str, str]:
        """The state slices every listed robot must have: parameter -> slice name (graphs
        refuse a robot that lacks one: its steps could never be labelled)."""
        return {f'reach.{k}': v for k, v in self.reach.needed_state_slices().items()}


NODE = NodeKind(role='reward', config=RewardNodeConfig)
