"""A listener at the edge site for bench/link_cut.py: what the driver made and did.

Writes one JSON line every 0.25 s to argv[1]: time, the highest transition seq the driver
published (and how many distinct ones), and the driver's status (steps, holds, what it
waits for). Runs until SIGINT/SIGTERM.
"""
from __future__ import annotations

import json
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException

from realrl_common.qos import DATA_QOS, STATUS_QOS
from realrl_interfaces.msg import DriverStatus, Transition


def main() -> None:
    rclpy.init()
    node = rclpy.create_node('link_probe')
    seqs: set[int] = set()
    status: dict = {}

    def on_status(m: DriverStatus) -> None:
        status.update(steps=int(m.steps), holds=int(m.holds), waiting_for=m.waiting_for,
                      acked=int(m.transitions_acked), sent=int(m.transitions_sent))

    node.create_subscription(Transition, '/arm0/transition', lambda m: seqs.add(int(m.seq)),
                             DATA_QOS)
    node.create_subscription(DriverStatus, '/arm0/status', on_status, STATUS_QOS)
    out = open(sys.argv[1], 'a', buffering=1)

    def write() -> None:
        out.write(json.dumps({'t': time.time(), 'max_seq': max(seqs, default=0),
                              'distinct': len(seqs), **status}) + '\n')
    node.create_timer(0.25, write)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        write()
        out.close()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
