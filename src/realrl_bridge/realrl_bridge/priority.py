"""The CPU priority of a bridge or router process (no rclpy, no zenoh here).

A bridge carries the control path across the link: the observation a driver publishes goes
up through the edge bridge and the router, the policy's answer comes down the same way,
and the driver holds the robot a whole control period when that answer misses its tick.
On a machine shared with training (a learner at nice 10, replay, other graphs), a bridge at
the default priority waits for the CPU behind them, and those waits land on the round trip.
So a bridge runs at the driver's niceness (-5 by default): every thread of the process,
the ROS middleware's, Zenoh's and Python's, those already running and those started later
(Linux gives each thread its own niceness and a new thread its creator's).
"""
from __future__ import annotations

import os


def set_process_nice(nice: int) -> str:
    """Give every thread of this process niceness ``nice`` (the threads it starts later
    inherit it from theirs). Returns '' on success, else why not (e.g. raising priority
    needs CAP_SYS_NICE); 0 leaves the process as it is."""
    if not -20 <= nice <= 19:
        raise ValueError(f'nice must be in -20..19, got {nice}')
    if nice == 0:
        return ''
    try:
        threads = [int(t) for t in os.listdir('/proc/self/task')]
    except OSError:
        threads = [0]   # no /proc: the calling thread only
    failed = ''
    for tid in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except ProcessLookupError:
            continue    # the thread ended meanwhile
        except (PermissionError, OSError) as e:
            failed = failed or f'cannot set nice {nice} ({e}; raising priority needs ' \
                               f'CAP_SYS_NICE)'
    return failed
