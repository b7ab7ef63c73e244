"""The edge's outbox and the cloud's de-duplication of transitions (pure cores), and the
payload codecs (zlib, PNG, JPEG on MuJoCo-like frames)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from realrl_bridge.payload_codec import Header, compress, decode_images, decompress, encode_images
from realrl_bridge.transition_link import Downlink, Uplink


def test_uplink_sends_each_seq_once_and_resends_until_acked():
    up = Uplink(limit=3, resend_after_s=1.0)
    assert [up.offer('arm0', s, f'p{s}', 0.0) for s in (1, 2)] == ['send', 'send']
    assert up.offer('arm0', 1, 'p1', 0.5) == 'held'          # the driver's own re-send
    assert up.due(0.9) == []
    assert up.due(1.0) == [('arm0', 1, 'p1'), ('arm0', 2, 'p2')]
    assert up.due(1.5) == []                                  # their send time restarted
    assert up.on_ack('arm0', 1) == 1
    assert up.offer('arm0', 1, 'p1', 1.6) == 'acked'
    assert up.due(2.0) == [('arm0', 2, 'p2')]
    assert up.on_ack('arm1', 5) == 0 and len(up) == 1         # another robot's ack
    assert (up.counters.sent, up.counters.resent, up.counters.acked) == (2, 3, 1)


def test_uplink_refuses_when_full_so_the_driver_keeps_the_transition():
    up = Uplink(limit=2, resend_after_s=1.0)
    assert [up.offer('arm0', s, s, 0.0) for s in (1, 2, 3)] == ['send', 'send', 'full']
    assert up.counters.refused_full == 1 and len(up) == 2
    up.on_ack('arm0', 2)
    assert up.offer('arm0', 3, 3, 1.0) == 'send'              # taken on the driver's re-send
    with pytest.raises(ValueError, match='limit'):
        Uplink(limit=0)


def test_downlink_passes_each_seq_once_until_acked():
    down = Downlink(redeliver_after_s=1.0)
    assert [down.accept('arm0', s, 0.0) for s in (1, 2, 1)] == [True, True, False]
    assert down.accept('arm1', 1, 0.0)                         # robots are apart
    down.on_ack('arm0', 1)
    assert not down.accept('arm0', 1, 10.0)                    # acked: never again
    assert not down.accept('arm0', 2, 0.5)                     # a copy in flight
    assert down.accept('arm0', 2, 2.0)    # re-sent, still unacked: the replay dropped it
    assert (down.delivered, down.duplicates) == (4, 3)


def frame(h=48, w=64) -> np.ndarray:
    """A smooth, textured frame (gradients and a disc), like a rendered scene."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x + y) % 256], -1).astype(np.uint8)
    img[((y - h // 2) ** 2 + (x - w // 2) ** 2) < (h // 4) ** 2] = (200, 30, 30)
    return img


def image(pixels: np.ndarray, encoding='rgb8'):
    h, w = pixels.shape[:2]
    return SimpleNamespace(height=h, width=w, encoding=encoding, step=pixels.strides[0],
                           data=pixels.tobytes())


class Msg:
    __slots__ = ('images', 'state')

    def __init__(self, images):
        self.images, self.state = images, [0.0]


def test_png_is_exact_jpeg_close_and_both_smaller():
    raw = frame()
    for codec, tol in (('png', 0), ('jpeg', 20)):
        msg = Msg([image(raw), image(raw[..., :1].copy(), 'mono8'), image(raw, '16UC1')])
        assert encode_images(msg, codec, jpeg_quality=90) == 2   # 16UC1 crosses unchanged
        assert msg.images[0].encoding == f'{codec}:rgb8'
        assert len(msg.images[0].data) < raw.nbytes
        assert msg.images[2].encoding == '16UC1'
        assert decode_images(msg) == 2
        back = np.frombuffer(msg.images[0].data, np.uint8).reshape(raw.shape)
        assert np.abs(back.astype(int) - raw).mean() <= tol
        assert msg.images[1].encoding == 'mono8' and len(msg.images[1].data) == 48 * 64
    with pytest.raises(ValueError, match='png'):
        encode_images(Msg([]), 'gif')


def test_zlib_and_header_round_trip():
    payload = frame().tobytes()
    assert decompress(compress(payload)) == payload
    assert Header.unpack(Header('zlib', 42).pack()) == Header('zlib', 42)
    assert Header.unpack(None) == Header()
    with pytest.raises(ValueError, match='bridge header'):
        Header.unpack(b'xyz')
