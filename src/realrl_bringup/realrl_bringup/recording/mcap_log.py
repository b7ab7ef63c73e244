"""An MCAP file of ROS 2 messages, written as rosbag2 writes them (no rclpy).

Profile ``ros2``, schemas encoded ``ros2msg`` (the full definition text,
``msg_definitions.full_definition``), messages ``cdr`` (the serialized bytes exactly as
they came over DDS). Chunks are zstd-compressed; the summary at the end indexes them, and a
file cut short by a crash still reads message by message up to its last whole chunk.
"""
from __future__ import annotations

import os
from pathlib import Path

from mcap.writer import CompressionType, Writer

from realrl_bringup.recording.msg_definitions import full_definition


class McapLog:
    """Appends serialized ROS 2 messages to one MCAP file, topic by topic."""

    def __init__(self, path: str | os.PathLike, chunk_size: int = 1 << 20):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, 'wb')
        self._writer = Writer(self._file, chunk_size=chunk_size,
                              compression=CompressionType.ZSTD)
        self._writer.start(profile='ros2', library='realrl')
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        """Messages written per topic."""
        self._sequence = 0

    def add_topic(self, topic: str, type_name: str, qos_yaml: str = '') -> None:
        """Declares a topic and its type (``pkg/msg/Type``); its schema is written once."""
        if topic in self._channels:
            return
        if type_name not in self._schemas:
            self._schemas[type_name] = self._writer.register_schema(
                name=type_name, encoding='ros2msg', data=full_definition(type_name).encode())
        metadata = {'offered_qos_profiles': qos_yaml} if qos_yaml else {}
        self._channels[topic] = self._writer.register_channel(
            topic=topic, message_encoding='cdr', schema_id=self._schemas[type_name],
            metadata=metadata)
        self.counts[topic] = 0

    def write(self, topic: str, data: bytes, log_time_ns: int,
              publish_time_ns: int | None = None) -> None:
        """One serialized message of a declared topic."""
        self._sequence += 1
        self._writer.add_message(channel_id=self._channels[topic], log_time=log_time_ns,
                                 data=data, publish_time=publish_time_ns or log_time_ns,
                                 sequence=self._sequence)
        self.counts[topic] += 1

    def close(self) -> None:
        """Writes the summary and closes the file (durably)."""
        if self._file.closed:
            return
        self._writer.finish()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
