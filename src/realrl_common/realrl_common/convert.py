"""numpy <-> ROS message fields, without per-element Python loops."""
from __future__ import annotations

import array

import numpy as np

ENCODINGS = {'rgb8': 3, 'mono8': 1}


def to_f32(values) -> array.array:
    """A float32[] field value from any array-like (fast path for rclpy)."""
    return array.array('f', np.ascontiguousarray(values, dtype=np.float32).tobytes())


def from_f32(field) -> np.ndarray:
    """A float32[] field as a numpy array (a copy, safe to keep)."""
    if isinstance(field, array.array):
        return np.frombuffer(field, dtype=np.float32).copy()
    return np.asarray(field, dtype=np.float32)


def fill_image(msg, frame: np.ndarray, frame_id: str = '') -> None:
    """Fill a sensor_msgs/Image from an HxWx3 (rgb8) or HxW (mono8) uint8 array."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.ndim == 2:
        msg.encoding, channels = 'mono8', 1
    elif frame.ndim == 3 and frame.shape[2] == 3:
        msg.encoding, channels = 'rgb8', 3
    else:
        raise ValueError(f'image must be HxW or HxWx3 uint8, got shape {frame.shape}')
    msg.height, msg.width = frame.shape[0], frame.shape[1]
    msg.step = frame.shape[1] * channels
    msg.is_bigendian = 0
    msg.header.frame_id = frame_id
    msg.data = frame.tobytes()


def image_array(msg) -> np.ndarray:
    """A sensor_msgs/Image as an HxWxC uint8 array (a view of the message's
    buffer, no copy); raises on unsupported encodings."""
    channels = ENCODINGS.get(msg.encoding)
    if channels is None:
        raise ValueError(f'unsupported image encoding {msg.encoding!r}; '
                         f'use one of {sorted(ENCODINGS)}')
    data = msg.data  # rclpy's array('B'), bytes, or a numpy view (cdr.py): viewed, not copied
    if isinstance(data, np.ndarray) and data.dtype == np.uint8:
        data = data.reshape(-1)
    else:
        data = np.frombuffer(data if isinstance(data, (bytes, bytearray, array.array, memoryview))
                             else bytes(data), dtype=np.uint8)
    expected = msg.height * msg.width * channels
    if data.size != expected:
        raise ValueError(f'image data has {data.size} bytes, expected {expected} '
                         f'for {msg.height}x{msg.width} {msg.encoding}')
    return data.reshape(msg.height, msg.width, channels)


def stamp_ns(stamp) -> int:
    """A ROS time stamp (sec, nanosec) in integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
