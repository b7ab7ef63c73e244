"""Settings every driver node reads besides its loop's (no ROS imports, so that graphs and
tests can validate driver configs without rclpy)."""
from __future__ import annotations

from dataclasses import dataclass, field

from realrl_common.config import check
from realrl_common.scheduling import check_realtime_priority
from realrl_driver.cameras.rig import RealCamerasConfig
from realrl_driver.core.episode_loop import LoopConfig


@dataclass(frozen=True)
class DriverNodeConfig(LoopConfig):
    """What every driver node reads besides the loop's settings; a robot's driver config
    subclasses it and adds its robot's own section."""

    replay_wait_s: float = 10.0
    """After this long without an answer from the replay node about where this robot's data
    ends, an error is logged (the robot holds until it answers); 0: do not ask, start at 1."""
    timing_log: str = ''
    """If set, every control tick's time is appended to this file (for benchmarks)."""
    applied_log: str = ''
    """If set, every action applied to the robot is appended to this file as a JSON line
    (an audit trail for safety checks)."""
    nice: int = -5
    """Scheduling niceness of the driver process; below 0 puts the control clock ahead of
    training on a shared machine (needs CAP_SYS_NICE; without it a warning, no change)."""
    realtime_priority: int = 0
    """SCHED_FIFO priority (1..99) of the control thread, as ros2_control gives its update
    loop; 0 keeps normal scheduling (with `nice`). A real-time thread runs as soon as its
    timer fires, ahead of every normal process, so other work on the machine cannot make a
    tick late; the kernel still leaves normal processes 5 % of every second. Needs
    CAP_SYS_NICE (without it a warning, no change)."""
    viz_hz: float = 10.0
    """Rate of the visualization topics (joint_states, /tf, viz/markers, camera images;
    realrl_driver/viz); 0: off. Published from the control tick after its step."""
    real_cameras: RealCamerasConfig = field(default_factory=RealCamerasConfig)
    """Real cameras (OpenCV devices, files, streams, Intel RealSense) attached to this robot;
    their frames join the robot's own `cameras` in every observation, at `image_size`."""

    def __post_init__(self):
        super().__post_init__()
        check(self.replay_wait_s >= 0, f'replay_wait_s must be >= 0, got {self.replay_wait_s}')
        check(self.viz_hz >= 0, f'viz_hz must be >= 0 (0: off), got {self.viz_hz}')
        check(-20 <= self.nice <= 19, f'nice must be in -20..19, got {self.nice}')
        check_realtime_priority(self.realtime_priority)
        clash = sorted(set(self.cameras) & set(self.real_cameras.names))
        check(not clash, f'real_cameras.sources: {clash} already name cameras of the robot '
                         f'(`cameras`); give the real cameras other names')

    def state_names(self) -> tuple[str, ...] | None:
        """Names of the robot's state slices, known from the config alone (without building
        the robot); None where only the built robot knows them. Graphs check at load time
        that a reward node can find the slices it reads."""
        return None
