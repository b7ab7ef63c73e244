"""Compression of what crosses the link (no rclpy, no zenoh here).

Two kinds of codec, one per topic (``TopicRoute.compression``):

- ``zlib``: the serialized message, compressed whole (lossless, any message).
- ``png`` / ``jpeg``: the images inside a message object, each ``sensor_msgs/Image``
  (found in the message's fields and lists, e.g. ``Observation.images``) with encoding
  rgb8, bgr8 or mono8 gets its ``data`` replaced by the PNG/JPEG file and its ``encoding``
  by ``'<codec>:<encoding>'``; ``decode_images`` restores the raw pixels (exact for PNG,
  approximate for JPEG). Other images cross unchanged.

Which codec a message used travels with it (the Zenoh attachment, ``Header``), so a receiver
never depends on its own configuration to read it.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

CODEC_IDS = {'none': 0, 'zlib': 1, 'png': 2, 'jpeg': 3}
CODEC_NAMES = {v: k for k, v in CODEC_IDS.items()}
CHANNELS = {'rgb8': 3, 'bgr8': 3, 'mono8': 1}
_HEADER = struct.Struct('<Bq')


@dataclass(frozen=True)
class Header:
    """What rides with each message as its Zenoh attachment."""

    codec: str = 'none'
    seq: int = -1
    """The transition's seq for a reliable topic, else -1."""

    def pack(self) -> bytes:
        """The attachment bytes."""
        return _HEADER.pack(CODEC_IDS[self.codec], self.seq)

    @staticmethod
    def unpack(data: bytes | None) -> 'Header':
        """From attachment bytes (none: a plain message)."""
        if not data:
            return Header()
        if len(data) != _HEADER.size:
            raise ValueError(f'attachment of {len(data)} bytes is not a bridge header')
        codec, seq = _HEADER.unpack(data)
        if codec not in CODEC_NAMES:
            raise ValueError(f'unknown codec id {codec} in a bridge header')
        return Header(CODEC_NAMES[codec], seq)


def compress(payload: bytes, level: int = 1) -> bytes:
    """zlib, fast level by default (the link, not the CPU, should set the pace)."""
    return zlib.compress(payload, level)


def decompress(payload: bytes) -> bytes:
    """Inverse of ``compress``."""
    return zlib.decompress(payload)


def _images(msg):
    """Every Image-like object (width, height, encoding, step, data) in ``msg``'s fields."""
    for name in getattr(msg, '__slots__', ()):
        value = getattr(msg, name, None)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if all(hasattr(item, a) for a in ('width', 'height', 'encoding', 'step', 'data')):
                yield item


def encode_images(msg, codec: str, jpeg_quality: int = 90) -> int:
    """Compress ``msg``'s images in place with 'png' or 'jpeg'; returns how many."""
    import cv2
    if codec not in ('png', 'jpeg'):
        raise ValueError(f"image codec must be 'png' or 'jpeg', got {codec!r}")
    ext, params = (('.png', [cv2.IMWRITE_PNG_COMPRESSION, 1]) if codec == 'png' else
                   ('.jpg', [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]))
    done = 0
    for img in _images(msg):
        channels = CHANNELS.get(img.encoding)
        if channels is None or img.width * img.height == 0:
            continue
        pixels = np.frombuffer(bytes(img.data), np.uint8).reshape(
            img.height, img.step)[:, :img.width * channels].reshape(
            img.height, img.width, channels)
        ok, blob = cv2.imencode(ext, pixels, params)
        if not ok:
            raise ValueError(f'{codec} encoding of a {img.width}x{img.height} image failed')
        img.data = blob.tobytes()
        img.encoding = f'{codec}:{img.encoding}'
        done += 1
    return done


def decode_images(msg) -> int:
    """Restore the raw pixels of images ``encode_images`` compressed; returns how many."""
    import cv2
    done = 0
    for img in _images(msg):
        codec, _, original = img.encoding.partition(':')
        if codec not in ('png', 'jpeg') or original not in CHANNELS:
            continue
        flag = cv2.IMREAD_GRAYSCALE if CHANNELS[original] == 1 else cv2.IMREAD_COLOR
        pixels = cv2.imdecode(np.frombuffer(bytes(img.data), np.uint8), flag)
        if pixels is None:
            raise ValueError(f'a {codec} image of the message could not be decoded')
        img.encoding = original
        img.step = img.width * CHANNELS[original]
        img.data = pixels.tobytes()
        done += 1
    return done
