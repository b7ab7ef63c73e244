"""Listens to every robot's transitions and the replay node's acks, and writes per robot the
seconds from each transition's arrival here to the first ack covering it.

Usage: python bench/_ack_probe.py OUT.json DURATION_S ROBOT [ROBOT ...]

It runs until DURATION_S has passed or it is stopped (SIGINT/SIGTERM); either way it writes
OUT.json, with how many transitions and acks it saw, so that a probe that heard nothing
shows as such instead of as a missing file. (It used to write only when it ran out its
time: stopped earlier, rclpy's signal handler shut its context down, spin_once raised
ExternalShutdownException, and nothing was written.)
"""
import json
import sys
import time
from collections import deque

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from realrl_common.qos import DATA_QOS
from realrl_interfaces.msg import Transition, TransitionAck


def main():
    out, duration, robots = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    rclpy.init()
    node = Node('ack_probe')
    pending = {r: deque() for r in robots}   # (seq, arrival) in arrival order
    latency = {r: [] for r in robots}
    seen = {r: 0 for r in robots}
    heard = {'transitions': 0, 'acks': 0}

    def on_transition(msg):
        heard['transitions'] += 1
        if msg.robot_id in pending and msg.seq > seen[msg.robot_id]:
            seen[msg.robot_id] = msg.seq
            pending[msg.robot_id].append((msg.seq, time.monotonic()))

    def on_ack(msg):
        heard['acks'] += 1
        q = pending.get(msg.robot_id)
        now = time.monotonic()
        while q and q[0][0] <= msg.committed_seq:
            latency[msg.robot_id].append(now - q.popleft()[1])

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
        with open(out, 'w') as f:
            json.dump({'latency_s': latency, 'heard': heard,
                       'unacked': {r: len(q) for r, q in pending.items()}}, f)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
