"""``realrl_common.weights.Chunk`` to and from its ROS message, ``WeightChunk``: the one
conversion every node that sends or takes weights uses (learner, bridges, policy)."""
from __future__ import annotations

from realrl_common.weights import Chunk
from realrl_interfaces.msg import WeightChunk


def to_msg(chunk: Chunk) -> WeightChunk:
    """The message of one chunk."""
    return WeightChunk(version=chunk.version, index=chunk.index, count=chunk.count,
                       total_bytes=chunk.total_bytes, crc32=chunk.crc32, data=chunk.data)


def from_msg(msg: WeightChunk) -> Chunk:
    """The chunk a message carries (its data copied out as bytes)."""
    return Chunk(msg.version, msg.index, msg.count, msg.total_bytes, msg.crc32,
                 bytes(msg.data))
