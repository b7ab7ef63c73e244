"""Listens to /arm0/<topic> for bench/cloud_edge.py: how old each message is on arrival.

argv: topic (observation | action | action_chunk), output file. Every message is written
as [receive time, header stamp, episode_id, step] (both times read the same host clock,
even across network namespaces; its age is the difference), one JSON list at exit
(SIGINT/SIGTERM).
"""
from __future__ import annotations

import json
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException

from realrl_common.qos import COMMAND_QOS, SENSOR_QOS
from realrl_interfaces.msg import Action, ActionChunk, Observation


def main() -> None:
    topic, out = sys.argv[1], sys.argv[2]
    cls, profile = {'observation': (Observation, SENSOR_QOS),
                    'action': (Action, COMMAND_QOS),
                    'action_chunk': (ActionChunk, COMMAND_QOS)}[topic]
    rclpy.init()
    node = rclpy.create_node(f'{topic}_age_probe')
    ages: list[list] = []

    def on_msg(m) -> None:
        stamp = m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
        if stamp > 0:
            ages.append([time.time(), stamp, int(m.episode_id), int(m.step)])
    node.create_subscription(cls, f'/arm0/{topic}', on_msg, profile)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        with open(out, 'w') as f:
            json.dump(ages, f)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
