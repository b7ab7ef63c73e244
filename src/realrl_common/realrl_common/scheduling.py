"""SCHED_FIFO for the thread that serves the control path (no ROS imports).

A driver's control thread runs SCHED_FIFO (its ``realtime_priority``) so that its clock
ticks on time however busy the machine is. But a tick can only apply an action and close a
transition once the policy's action and the reward node's label for its observation have
come back; on a loaded machine those nodes, at normal scheduling, wait behind the learner
and everything else, and the drivers hold (bench/fleet.py). So the policy and reward nodes
take a ``realtime_priority`` too, below the drivers' (graph_checks.check_priorities):
their executor thread, which takes each observation and publishes its answer, runs
SCHED_FIFO. Only that thread: the DDS threads and a policy's weights loader keep normal
scheduling, and the kernel leaves normal processes 5 % of every second.
"""
from __future__ import annotations

import os
import threading

MAX_PRIORITY = 99


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


def this_thread_scheduling() -> tuple[str, int]:
    """(policy name, real-time priority) the kernel gives the calling thread now."""
    policy = os.sched_getscheduler(0)
    names = {os.SCHED_OTHER: 'SCHED_OTHER', os.SCHED_FIFO: 'SCHED_FIFO',
             os.SCHED_RR: 'SCHED_RR'}
    return names.get(policy, str(policy)), os.sched_getparam(0).sched_priority


def serve_realtime(logger, priority: int) -> bool:
    """Run the calling thread (a node's executor thread: build the node in the thread that
    spins it) SCHED_FIFO at ``priority`` and log what the kernel gave it, read back; a
    refusal is a warning, not an error (the node still serves, maybe late). Threads started
    before keep their scheduling; threads this one starts later inherit it. Returns whether
    it runs at the asked priority (True for 0, nothing asked)."""
    if priority == 0:
        return True
    why = run_this_thread_realtime(priority)
    policy, got = this_thread_scheduling()
    granted = not why and policy == 'SCHED_FIFO' and got == priority
    line = (f'serving thread {threading.get_native_id()}: {policy} priority {got} (asked '
            f'realtime_priority {priority})')
    if granted:
        logger.info(line)
    else:
        logger.warning(f'{line}; NOT granted: {why or "read back differs"}; answers may be '
                       'late when the machine is loaded')
    return granted
