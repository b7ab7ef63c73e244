"""The replay node's parameters (no ROS imports: graphs validate them without rclpy)."""
from __future__ import annotations

from dataclasses import dataclass

from realrl_common.config import check
from realrl_common.plugins import NodeKind
from realrl_common.scheduling import check_realtime_priority


@dataclass(frozen=True)
class ReplayNodeConfig:
    """Parameters of the replay node."""

    store_path: str = 'replay'
    """Folder of the Zarr replay store (created if absent or empty, recovered if it exists)."""
    robot_ids: tuple[str, ...] = ('arm0',)
    """Robots whose transitions are stored."""
    commit_interval_s: float = 0.02
    """How often appended transitions are made durable and acknowledged."""
    commit_max_wait_s: float = 0.2
    """Longest a transition waits for the image fields' next chunk boundary before a commit
    takes it anyway: under load commits stop at boundaries, so their markers carry no image
    rows; at light load a transition is acknowledged within about this long."""
    ack_repeat_s: float = 1.0
    """How often every robot's ack is published again."""
    fsync: bool = True
    """fsync at each commit (durable across power loss, not only process crashes)."""
    realtime_priority: int = 0
    """SCHED_FIFO priority (1..99) of the thread that takes transitions and publishes acks:
    under the policy and reward nodes' and the drivers' (graph_checks), above normal work.
    When those run SCHED_FIFO on a loaded machine, a replay node at normal scheduling gets
    what is left; its acks then come late, and every driver re-sends its unacknowledged
    transitions, which loads the control threads (bench/fleet.py). 0: normal scheduling
    (realrl_common.scheduling)."""

    def __post_init__(self):
        check(len(self.robot_ids) > 0, 'robot_ids must name at least one robot, e.g. [arm0]')
        check(self.commit_interval_s > 0,
              f'commit_interval_s must be > 0, got {self.commit_interval_s}')
        check(bool(self.store_path), 'store_path must name a folder')
        check(self.commit_max_wait_s >= 0,
              f'commit_max_wait_s must be >= 0, got {self.commit_max_wait_s}')
        check(self.ack_repeat_s > 0, f'ack_repeat_s must be > 0, got {self.ack_repeat_s}')
        check_realtime_priority(self.realtime_priority)


NODE = NodeKind(role='replay', config=ReplayNodeConfig)
