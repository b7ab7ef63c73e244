"""The two ends of bench/weights_on_site_link.py, one per network namespace (argv[1]).

``server`` (the site's GPU server): answers every observation on /obs with an action on
/act at once (a policy that takes no time), and publishes the learner's weights on
/learner/weights as the learner node does (``realrl_common.weights.send_blob``, WeightChunk
messages of argv[7] bytes, WEIGHTS_QOS): a new version of argv[3] MB every argv[4] s. It
runs windows of argv[5] s in the order given by argv[6] (comma-separated modes: ``idle`` no
weights, ``unpaced``, ``paced`` at argv[2] Mbit/s) and prints ``window <mode> <t0> <t1>``
per window, then ``done``.

``robot`` (a robot's computer): publishes an observation on /obs at 50 Hz (SENSOR_QOS, the
driver's), takes the actions (COMMAND_QOS) and takes the weights as a policy node does
(``BlobAssembler``). On SIGTERM it prints one JSON line: ``sent`` [[seq, t]], ``answered``
{seq: t}, ``versions`` [[t, version]] (each version received whole).

Times are ``time.monotonic()``: one clock for both namespaces of this host.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import _util  # noqa: F401  (puts the workspace's packages on sys.path)
import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Header

from realrl_common.qos import COMMAND_QOS, SENSOR_QOS, WEIGHTS_QOS
from realrl_common.weight_msgs import from_msg, to_msg
from realrl_common.weights import BlobAssembler, Chunk, budget, send_blob
from realrl_interfaces.msg import WeightChunk

PERIOD_S = 0.02


def stamp(header: Header, t: float) -> None:
    ns = int(t * 1e9)
    header.stamp.sec, header.stamp.nanosec = ns // 10 ** 9, ns % 10 ** 9


def server(node, budget_mbit: float, version_mb: float, every_s: float, window_s: float,
           modes: list[str], chunk_bytes: int) -> None:
    act = node.create_publisher(Header, '/act', COMMAND_QOS)
    node.create_subscription(Header, '/obs', act.publish, SENSOR_QOS)
    weights = node.create_publisher(WeightChunk, '/learner/weights', WEIGHTS_QOS)
    blob = os.urandom(int(version_mb * 1e6))

    def send(c: Chunk) -> None:
        weights.publish(to_msg(c))

    paced = budget(budget_mbit, chunk_bytes)     # one budget for the run, as a learner has

    def run() -> None:
        time.sleep(3.0)                 # discovery across the link
        version = 0
        for mode in modes:
            t0 = time.monotonic()
            end = t0 + window_s
            while time.monotonic() < end:
                due = time.monotonic() + every_s
                if mode != 'idle':
                    version += 1
                    send_blob(version, blob, send, chunk_bytes=chunk_bytes,
                              bucket=paced if mode == 'paced' else None,
                              stop=lambda: time.monotonic() >= end)
                time.sleep(max(0.0, min(due, end) - time.monotonic()))
            print(f'window {mode} {t0} {time.monotonic()}', flush=True)
        print('done', flush=True)
    threading.Thread(target=run, daemon=True).start()


def robot(node) -> dict:
    sent, answered, versions = [], {}, []
    obs = node.create_publisher(Header, '/obs', SENSOR_QOS)
    node.create_subscription(Header, '/act', lambda m: answered.setdefault(
        int(m.frame_id), time.monotonic()), COMMAND_QOS)
    assembler = BlobAssembler()

    def on_chunk(m) -> None:
        whole = assembler.add(from_msg(m))
        if whole is not None:
            versions.append([time.monotonic(), whole[0]])
    node.create_subscription(WeightChunk, '/learner/weights', on_chunk, WEIGHTS_QOS)

    def tick() -> None:
        h = Header(frame_id=str(len(sent)))
        t = time.monotonic()
        stamp(h, t)
        sent.append([len(sent), t])
        obs.publish(h)
    node.create_timer(PERIOD_S, tick)
    return {'sent': sent, 'answered': answered, 'versions': versions}


def main() -> None:
    role = sys.argv[1]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node(f'site_{role}')
    if role == 'server':
        server(node, float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]),
               float(sys.argv[5]), sys.argv[6].split(','), int(sys.argv[7]))
        record = None
    else:
        record = robot(node)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
    finally:
        if record is not None:
            print(json.dumps(record), flush=True)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
