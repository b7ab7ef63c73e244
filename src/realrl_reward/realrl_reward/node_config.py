"""The reward node's parameters (no ROS imports: graphs validate them without rclpy)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from realrl_common.config import ConfigError, build_config, check
from realrl_common.plugins import NodeKind
from realrl_common.scheduling import check_realtime_priority
from realrl_reward.reach_reward import ReachRewardConfig
from realrl_reward.reward_kinds import RewardKind, reward_kind


@dataclass(frozen=True)
class RewardNodeConfig:
    """Parameters of the reward node."""

    robot_ids: tuple[str, ...] = ('arm0',)
    """Robots whose observations this node labels."""
    type: str = 'reach'
    """The reward function, a ``realrl.rewards`` entry point: 'reach' (distance of the end
    effector to the target, from the state), 'classifier' (a learned success classifier on
    the camera frames), or one a package adds."""
    reach: ReachRewardConfig = field(default_factory=ReachRewardConfig)
    """The reach reward's parameters (mode, success radius, layout keys), for type reach."""
    realtime_priority: int = 0
    """SCHED_FIFO priority (1..99) of the thread that takes observations and publishes the
    labels, so that they are not late for want of a CPU on a loaded machine (drivers hold
    a tick until both the action and the label of its observation are back). Below every
    served driver's realtime_priority, so no answer delays a clock (graph_checks). 0: normal
    scheduling (realrl_common.scheduling)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Parameters of any other type, checked by its config class (e.g. for classifier:
    model_path, threshold, success_reward, failure_reward)."""

    def __post_init__(self):
        check(len(self.robot_ids) > 0, 'robot_ids must name at least one robot, e.g. [arm0]')
        check_realtime_priority(self.realtime_priority)
        self.reward_config()  # the type exists and its parameters are valid

    def reward_kind(self) -> RewardKind:
        """The registered kind of ``type``; ConfigError naming the known types."""
        return reward_kind(self.type)

    def reward_config(self):
        """The validated parameters of the chosen reward function."""
        kind = self.reward_kind()
        if self.type == 'reach':
            check(not self.params, f'params: type reach takes its parameters under `reach`, '
                                   f'got params {sorted(self.params)}; move them there')
            return self.reach
        try:
            return build_config(kind.config, self.params)
        except ConfigError as e:
            raise ConfigError(f'params (of reward type {self.type!r}): {e}') from None

    def needed_state_slices(self) -> dict[str, str]:
        """The state slices every listed robot must have: parameter -> slice name (graphs
        refuse a robot that lacks one: its steps could never be labelled)."""
        if self.type == 'reach':
            return {f'reach.{k}': v for k, v in self.reach.needed_state_slices().items()}
        needed = getattr(self.reward_config(), 'needed_state_slices', None)
        return {f'params.{k}': v for k, v in needed().items()} if callable(needed) else {}


NODE = NodeKind(role='reward', config=RewardNodeConfig)
