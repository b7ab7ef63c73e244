"""The hardware manager's parameters (no ROS imports: graphs validate them without rclpy)."""
from __future__ import annotations

from dataclasses import dataclass

from realrl_common.config import check
from realrl_common.plugins import NodeKind
from realrl_common.scheduling import check_realtime_priority
from realrl_hardware.registry import RegistryConfig


@dataclass(frozen=True)
class HardwareManagerConfig(RegistryConfig):
    """Parameters of the hardware manager node."""

    activate: bool = True
    """Bring every discovered driver to active (configure, then activate); false: only watch,
    and admit drivers once someone else has configured them."""
    scan_period_s: float = 0.1
    """How often the ROS graph is scanned for drivers."""
    publish_period_s: float = 0.5
    """~/robots is published on every change, and at least this often."""
    request_timeout_s: float = 0.3
    """A describe or get_state request with no answer after this long is sent again (a
    request to a restarted driver can be lost while the graph still lists its dead
    predecessor). Short is safe: a driver busy in a transition answers every copy later."""
    transition_timeout_s: float = 2.0
    """A configure or activate with no answer after this long: the state is read again (that
    read waits for a slow transition to finish; nothing is sent twice without it)."""
    retry_after_s: float = 5.0
    """A driver whose bring-up failed is tried again after this long."""
    realtime_priority: int = 0
    """SCHED_FIFO priority (1..99) of the thread that takes the drivers' heartbeats, below
    every driver's (graph_checks). When the control path runs SCHED_FIFO on a loaded machine,
    a manager at normal scheduling can miss heartbeats for heartbeat_timeout_s and revoke a
    lease on robots that are alive (bench/fleet.py). 0: normal scheduling."""

    def __post_init__(self):
        super().__post_init__()
        for name in ('scan_period_s', 'publish_period_s', 'request_timeout_s',
                     'transition_timeout_s', 'retry_after_s'):
            check(getattr(self, name) > 0, f'{name} must be > 0, got {getattr(self, name)}')
        check_realtime_priority(self.realtime_priority)


NODE = NodeKind(role='hardware', config=HardwareManagerConfig)
