"""The policy node's parameters (no ROS imports: graphs validate them without rclpy)."""
from __future__ import annotations

from dataclasses import dataclass

from realrl_common.config import check
from realrl_common.plugins import NodeKind


@dataclass(frozen=True)
class PolicyNodeConfig:
    """Parameters of the policy node."""

    robot_ids: tuple[str, ...] = ('arm0',)
    """Robots this policy serves (their driver namespaces)."""
    deterministic: bool = False
    """Act with the mean action (evaluation) instead of sampling (training)."""
    seed: int = 0
    """Seed of the exploration noise."""
    weights_topic: str = '/learner/weights'
    """Where versioned weight chunks arrive from."""

    def __post_init__(self):
        check(len(self.robot_ids) > 0, 'robot_ids must name at least one robot, e.g. [arm0]')


NODE = NodeKind(role='policy', config=PolicyNodeConfig)
