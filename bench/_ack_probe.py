"""Listens to every robot's transitions and the replay node's acks, and writes per robot the
seconds from each transition's stamp (the driver's tick that closed it) to the arrival here
of the first ack covering it.

Usage: python bench/_ack_probe.py OUT.json DURATION_S REALTIME_PRIORITY ROBOT [ROBOT ...]

The latencies are worked out at the end from every transition's stamp and the time each
robot's committed seq first reached it, so they do not depend on the order in which this
process takes the two topics, nor on how late it takes a transition. Its thread runs
SCHED_FIFO at REALTIME_PRIORITY (0: normal) so that an ack's arrival time is not the time a
loaded machine left it a CPU.

It runs until DURATION_S has passed or it is stopped (SIGINT/SIGTERM); either way it writes
OUT.json, with how many transitions and acks it heard, so that a probe that heard nothing
shows as such instead of as a missing file. (It used to write only when it ran out its
time: stopped earlier, rclpy's signal handler shut its context down, spin_once raised
ExternalShutdownException, and nothing was written.)
"""
import bisect
import json
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from realrl_common.qos import DATA_QOS
from realrl_common.scheduling import run_this_thread_realtime
from realrl_interfaces.msg import Transition, TransitionAck


def latencies(stamps: dict, acks: list) -> list:
    """Seconds from each stamp (seq -> time) to the first ack (committed seq, time; in
    rising seq) covering it; transitions never covered are left out."""
    covered = [seq for seq, _ in acks]
    out = []
    for seq, stamp in sorted(stamps.items()):
        i = bisect.bisect_left(covered, seq)
        if i < len(acks):
            out.append(acks[i][1] - stamp)
    return out


def main():
    out, duration, rt, robots = (sys.argv[1], float(sys.argv[2]), int(sys.argv[3]),
                                 sys.argv[4:])
    rclpy.init()
    node = Node('ack_probe')
    refused = run_this_thread_realtime(rt)
    stamps = {r: {} for r in robots}   # seq -> the transition's stamp (s, wall clock)
    acks = {r: [] for r in robots}     # (committed seq, arrival), committed seq rising
    heard = {'transitions': 0, 'acks': 0}

    def on_transition(msg):
        heard['transitions'] += 1
        if msg.robot_id in stamps:
            s = msg.header.stamp
            stamps[msg.robot_id].setdefault(msg.seq, s.sec + 1e-9 * s.nanosec)

    def on_ack(msg):
        heard['acks'] += 1
        now = time.time()
        got = acks.get(msg.robot_id)
        if got is not None and (not got or msg.committed_seq > got[-1][0]):
            got.append((msg.committed_seq, now))

    for r in robots:
        node.create_subscription(Transition, f'/{r}/transition', on_transition, DATA_QOS)
    node.create_subscription(TransitionAck, '/replay/ack', on_ack, DATA_QOS)
    end = time.monotonic() + duration
    try:
        while time.monotonic() < end and rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        covered = {r: acks[r][-1][0] if acks[r] else 0 for r in robots}
        with open(out, 'w') as f:
            json.dump({'latency_s': {r: latencies(stamps[r], acks[r]) for r in robots},
                       'heard': heard, 'realtime_refused': refused,
                       'unacked': {r: sum(seq > covered[r] for seq in stamps[r])
                                   for r in robots}}, f)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
