"""How the control path's threads are scheduled, set and read back (no ROS imports).

``thread_scheduling`` reads what the kernel gives a thread (policy, real-time priority,
niceness) and ``scheduling_granted`` compares it with what was asked: a driver logs its
control thread's, benches check them. ``set_process_nice`` gives every thread of a process
a niceness (a bridge or router carries the control path across the link, so it runs at the
driver's -5: realrl_bridge). ``run_this_thread_realtime``/``serve_realtime`` put one thread on
SCHED_FIFO:

A driver's control thread runs SCHED_FIFO (its ``realtime_priority``) so that its clock
ticks on time however busy the machine is. But a tick can only apply an action and close a
transition once the policy's action and the reward node's label for its observation have
come back; on a loaded machine those nodes, at normal scheduling, wait behind the learner
and everything else, and the drivers hold (bench/fleet.py). So the policy and reward nodes
take a ``realtime_priority`` too, below the drivers' (graph_checks.check_priorities):
their executor thread, which takes each observation and publishes its answer, runs
SCHED_FIFO. Only that thread: the DDS threads and a policy's weights loader keep normal
scheduling, and the kernel leaves normal processes 5 % of every second.

``CpuWakeLatency`` holds the kernel's limit on how long an idle CPU may take to wake up
(``/dev/cpu_dma_latency``, PM QoS) for as long as a run lasts (a graph's ``host`` section,
realrl_bringup.graph). An idle CPU otherwise sleeps in its deepest idle state, and in a
virtual machine an idle virtual CPU halts and is woken by its host: each of a cloud-edge
step's dozen hand-overs (driver, bridge, relay, router, policy and back) then waits for a
CPU to wake. With the limit at 0 idle CPUs poll instead (bench/cloud_edge.py: the round
trip's p50 95-106 ms -> 68 ms on an idle 2-core VM), at the price of CPUs that never sleep.
"""
from __future__ import annotations

import os
import struct
import threading

from realrl_common.config import check

MAX_PRIORITY = 99
POLICIES = {0: 'SCHED_OTHER', 1: 'SCHED_FIFO', 2: 'SCHED_RR', 3: 'SCHED_BATCH',
            5: 'SCHED_IDLE', 6: 'SCHED_DEADLINE'}


def check_realtime_priority(priority: int) -> None:
    """A node config's check of its ``realtime_priority``: ConfigError unless 0..99."""
    check(0 <= priority <= MAX_PRIORITY,
          f'realtime_priority must be in 0..{MAX_PRIORITY} (0: off), got {priority}')


def run_this_thread_realtime(priority: int) -> str:
    """Run the calling thread SCHED_FIFO at ``priority`` (1..99; 0 leaves it alone).

    Returns '' when granted, else why not (the thread keeps its scheduling): it needs root
    or CAP_SYS_NICE, and an RLIMIT_RTPRIO at least ``priority``."""
    if priority == 0:
        return ''
    if not 1 <= priority <= MAX_PRIORITY:
        raise ValueError(f'realtime_priority must be in 0..{MAX_PRIORITY} (0: off), '
                         f'got {priority}')
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError) as e:
        return f'cannot run at SCHED_FIFO priority {priority} ({e}; needs CAP_SYS_NICE)'
    return ''


def thread_scheduling(tid: int | None = None) -> dict:
    """What the kernel gives a thread (this one by default), read back from
    /proc/<tid>/stat: ``{'tid', 'policy', 'rt_priority', 'nice'}``. Linux schedules per
    thread, so this is what a control thread actually got, whatever it asked for."""
    tid = tid if tid is not None else threading.get_native_id()
    with open(f'/proc/{tid}/stat') as f:
        stat = f.read()
    fields = stat[stat.rindex(')') + 2:].split()  # fields[0] is stat field 3 (state)
    nice, rt_priority, policy = int(fields[16]), int(fields[37]), int(fields[38])
    return {'tid': tid, 'policy': POLICIES.get(policy, str(policy)),
            'rt_priority': rt_priority, 'nice': nice}


def scheduling_granted(asked_rt: int, asked_nice: int, got: dict) -> dict:
    """Whether a thread got the real-time priority and niceness it asked for (``None``:
    not asked). A SCHED_FIFO thread ignores niceness, so only the policy counts then."""
    rt = None if asked_rt == 0 else (got['policy'] == 'SCHED_FIFO' and
                                      got['rt_priority'] == asked_rt)
    nice = None if asked_nice == 0 else got['nice'] == asked_nice
    return {'realtime': rt, 'nice': nice}


def serve_realtime(logger, priority: int) -> bool:
    """Run the calling thread (a node's executor thread: build the node in the thread that
    spins it) SCHED_FIFO at ``priority`` and log what the kernel gave it, read back; a
    refusal is a warning, not an error (the node still serves, maybe late). Threads started
    before keep their scheduling; threads this one starts later inherit it. Returns whether
    it runs at the asked priority (True for 0, nothing asked)."""
    if priority == 0:
        return True
    why = run_this_thread_realtime(priority)
    got = thread_scheduling()
    granted = not why and scheduling_granted(priority, 0, got)['realtime']
    line = (f'serving thread {got["tid"]}: {got["policy"]} priority {got["rt_priority"]} '
            f'(asked realtime_priority {priority})')
    if granted:
        logger.info(line)
    else:
        logger.warning(f'{line}; NOT granted: {why or "read back differs"}; answers may be '
                       'late when the machine is loaded')
    return granted


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


CPU_WAKE_LATENCY_FILE = '/dev/cpu_dma_latency'


class CpuWakeLatency:
    """Hold the machine's CPU wake-up latency at ``us`` microseconds or less while open
    (0: idle CPUs poll and never sleep). The kernel keeps the lowest limit any process holds
    and drops this one when the file is closed, so a killed holder releases it too.
    ``refused``: '' when held, else why not (it needs root); the machine is then as it was."""

    def __init__(self, us: int, path: str = CPU_WAKE_LATENCY_FILE):
        if us < 0:
            raise ValueError(f'cpu_wake_latency_us must be >= 0, got {us}')
        self.us, self.path, self._fd, self.refused = us, path, None, ''
        try:
            self._fd = os.open(path, os.O_WRONLY)
            os.write(self._fd, struct.pack('i', us))
        except OSError as e:
            self.close()
            self.refused = (f'cannot hold the CPU wake-up latency at {us} us ({path}: '
                            f'{e.strerror or e}; it needs root and a kernel with PM QoS)')

    @property
    def held(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def cpu_wake_latency_now(path: str = CPU_WAKE_LATENCY_FILE) -> int:
    """The limit the kernel applies now, in microseconds (the lowest any process holds)."""
    with open(path, 'rb') as f:
        return struct.unpack('i', f.read(4))[0]
