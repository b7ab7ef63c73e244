"""The store's image filter: exact round trips, compression of camera-like frames, bad chunks."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from realrl_replay import pixel_delta
from realrl_replay.config import CodecConfig
from realrl_replay.errors import StoreError
from realrl_replay.layout import ChunkCodec
from realrl_replay.schema import FieldSpec

shapes = st.tuples(st.integers(1, 4), st.integers(1, 9), st.integers(1, 9), st.integers(1, 4))


@settings(max_examples=200, deadline=None)
@given(shapes.flatmap(lambda s: arrays(np.uint8, s)))
def test_decode_inverts_encode_for_any_images(images):
    coded = pixel_delta.encode(images).copy()
    np.testing.assert_array_equal(pixel_delta.decode(coded, images.shape), images)


def test_encode_zigzags_differences_to_small_codes():
    line = np.array([[[[10], [9], [11], [11]], [[12], [8], [11], [255]]]], np.uint8)
    coded = pixel_delta.encode(line).reshape(line.shape)[0, :, :, 0]
    # line 0: 10 as is, then left differences -1, +2, 0 -> zigzag 1, 4, 0
    assert coded[0].tolist() == [20, 1, 4, 0]   # 10 zigzags to 20 (an unsigned byte, 10 >= 0)
    # line 1: differences to the line above: +2, -1, 0, +244 (= -12 mod 256) -> 4, 1, 0, 23
    assert coded[1].tolist() == [4, 1, 0, 23]


def camera_frames(n=32, noise=1.5):
    """Smooth gradients plus sensor noise, like the benchmark's frames."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:128, 0:128]
    base = np.stack([x, y, (x + y) // 2], -1).astype(np.float64)
    frames = base[None] + rng.normal(0, noise, (n, 128, 128, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_pixel_delta_compresses_noisy_frames_better_than_the_byte_delta():
    frames = camera_frames()
    spec = FieldSpec('obs/image', (128, 128, 3), np.dtype(np.uint8), 32,
                     CodecConfig('lz4', 1, 'bitshuffle', 'pixel_delta'))
    pixel = ChunkCodec(spec)
    delta = ChunkCodec(FieldSpec(spec.name, spec.shape, spec.dtype, 32,
                                 CodecConfig('lz4', 1, 'bitshuffle', 'delta')))
    encoded = pixel.encode(frames)
    assert len(encoded) < 0.9 * len(delta.encode(frames))
    np.testing.assert_array_equal(pixel.decode(encoded, 'c.0'), frames)
    out = np.empty_like(frames)
    assert pixel.decode(encoded, 'c.0', out=out) is out
    np.testing.assert_array_equal(out, frames)


def test_a_chunk_of_the_wrong_size_is_reported_as_corrupted():
    spec = FieldSpec('obs/image', (8, 8, 3), np.dtype(np.uint8), 8,
                     CodecConfig('lz4', 1, 'bitshuffle', 'pixel_delta'))
    other = FieldSpec('obs/image', (8, 8, 3), np.dtype(np.uint8), 4, spec.codec)
    short = ChunkCodec(other).encode(np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(StoreError, match='expected 1536'):
        ChunkCodec(spec).decode(short, 'data/obs/image/c.0.0.0.0')
    with pytest.raises(StoreError, match='corrupted'):
        ChunkCodec(spec).decode(b'\x02\x01', 'data/obs/image/c.0.0.0.0')


def test_the_filter_refuses_fields_that_are_not_images():
    spec = FieldSpec('obs/state', (1024, 4), np.dtype(np.float32), 8,
                     CodecConfig('lz4', 1, 'bitshuffle', 'pixel_delta'))
    with pytest.raises(StoreError, match='pixel_delta filter needs'):
        ChunkCodec(spec)
