"""ROS 2 recorder: topics of the graph into one MCAP file (``realrl record``, ``record_node``).

Started by ``realrl record FILE.mcap`` (or ``record_node FILE.mcap``), it takes its settings
from the command line; as a node of a graph (role ``recorder``: ``package: realrl_bringup,
executable: record_node``, ``parameters: {out: ${run_dir}/episodes.mcap}``), from its ROS
parameters, checked like every node's (``RecordConfig``). A file that exists already is never
overwritten (a restarted recorder, a resumed run): the next free ``<name>-<n>.mcap`` is
written instead.

Subscribes to each topic with the serialized (raw) form, so messages are stored byte for
byte as they crossed DDS, and with the QoS its publishers offer (reliable only where every
publisher is, transient-local only where every publisher is), as rosbag2 does. Topics that
appear later are picked up by a discovery timer. Standard types are stored under their own
names (sensor_msgs/msg/JointState, tf2_msgs/msg/TFMessage, sensor_msgs/msg/Image ...) and
ours with their .msg definitions embedded, so Foxglove and rosbag2 tools read both.
"""
from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from realrl_bringup.recording.mcap_log import McapLog
from realrl_bringup.recording.record_config import RecordConfig, unused_path
from realrl_common.config import BAD_CONFIG_EXIT, ConfigError
from realrl_common.ros_params import read_config

SKIPPED = ('/rosout', '/parameter_events')
SKIPPED_SUFFIXES = ('/_action/status', '/transition_event')


def message_class(type_name: str):
    """The Python class of ``pkg/msg/Type``."""
    pkg, _, name = type_name.split('/')
    return getattr(importlib.import_module(f'{pkg}.msg'), name)


class RecordNode(Node):
    """Writes the configured (or all) topics to ``cfg.out`` until closed; without ``cfg``,
    its settings are its ROS parameters (a recorder node of a graph)."""

    def __init__(self, cfg: RecordConfig | None = None, name: str = 'recorder'):
        super().__init__(name, automatically_declare_parameters_from_overrides=True)
        self.cfg = cfg = cfg if cfg is not None else read_config(self, RecordConfig)
        path = unused_path(cfg.out)
        if path != Path(cfg.out):
            self.get_logger().warning(f'{cfg.out} exists already; recording to {path}')
        self.log = McapLog(path)
        self._subs = {}
        self._discover()
        self._timer = self.create_timer(cfg.discovery_period_s, self._discover)

    def _wanted(self, topic: str) -> bool:
        if self.cfg.topics:
            return topic in self.cfg.topics
        return topic not in SKIPPED and not topic.endswith(SKIPPED_SUFFIXES)

    def _discover(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            if topic in self._subs or not self._wanted(topic) or len(types) != 1:
                continue
            qos = self._qos_for(topic)
            if qos is None:
                continue  # no publisher yet: its QoS is unknown
            try:
                cls = message_class(types[0])
                self.log.add_topic(topic, types[0])
            except (ImportError, AttributeError, LookupError, ValueError) as e:
                self.get_logger().warning(f'not recording {topic} ({types[0]}): {e}')
                self._subs[topic] = None
                continue
            self._subs[topic] = self.create_subscription(
                cls, topic, lambda data, t=topic: self._on_message(t, data), qos, raw=True)
            self.get_logger().info(f'recording {topic} ({types[0]})')

    def _qos_for(self, topic: str) -> QoSProfile | None:
        infos = self.get_publishers_info_by_topic(topic)
        if not infos:
            return None
        reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
        latched = all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                      for i in infos)
        return QoSProfile(
            depth=self.cfg.depth, history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)

    def _on_message(self, topic: str, data: bytes) -> None:
        self.log.write(topic, data, time.time_ns())

    def close(self) -> None:
        """Finishes the file; logs what it holds."""
        self.log.close()
        counts = ', '.join(f'{t} {n}' for t, n in sorted(self.log.counts.items()))
        self.get_logger().info(f'wrote {self.log.path}: {counts or "no messages"}')


def record(cfg: RecordConfig | None, args=None) -> int:
    """Records until ``cfg.duration_s`` (0: until SIGINT/SIGTERM); returns 0, or
    BAD_CONFIG_EXIT with the message when ``cfg`` is None and the ROS parameters are bad."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from realrl_common.node_main import stopped_by_shutdown

    rclpy.init(args=args)
    try:
        node = RecordNode(cfg)
    except ConfigError as e:
        print(f'record_node: bad configuration: {e}', file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return BAD_CONFIG_EXIT
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    end = time.monotonic() + node.cfg.duration_s if node.cfg.duration_s > 0 else None
    try:
        while rclpy.ok() and (end is None or time.monotonic() < end):
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError as e:  # RCLError: a take cut short by the signal's shutdown is a stop
        if not stopped_by_shutdown(e):
            raise
    finally:
        node.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(args=None):
    """Entry point of ``record_node``: ``FILE.mcap [--topic T] [--duration-s S]``, or, with
    nothing before ``--ros-args`` (a node of a graph), the parameters out, topics, ..."""
    from realrl_bringup.recording.record_config import parse_record_args
    argv = sys.argv[1:] if args is None else list(args)
    ros_args = argv[argv.index('--ros-args'):] if '--ros-args' in argv else []
    own = argv[:len(argv) - len(ros_args)]
    sys.exit(record(parse_record_args(own) if own else None, args=['record_node', *ros_args]))
