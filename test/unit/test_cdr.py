"""cdr.py reads what rclpy serializes: every field of a Transition with camera frames, field
by field as the replay node decodes it, for sizes that move every alignment."""
import numpy as np
import pytest
from ros_env import require_workspace

from realrl_common.transition import TRANSITION


def generated():
    require_workspace()
    msgs = pytest.importorskip('realrl_interfaces.msg', reason='source scripts/env.sh')
    serialization = pytest.importorskip('rclpy.serialization', reason='source scripts/env.sh')
    from sensor_msgs.msg import Image
    return msgs.Transition, Image, serialization


@pytest.mark.parametrize('dims', [(3, 2, 5, 7, 'f'), (14, 7, 128, 128, 'front'),
                                  (1, 1, 1, 3, 'wristcam')])
def test_serialized_transitions_read_back_as_rclpy_reads_them(dims):
    Transition, Image, serialization = generated()
    from realrl_common.cdr import CdrReader
    state_dim, action_dim, h, w, cam = dims
    rng = np.random.default_rng(state_dim)
    frames = {cam: rng.integers(0, 255, (h, w, 3), np.uint8),
              cam + 'x': rng.integers(0, 255, (h, w, 3), np.uint8)}
    values = {'state': rng.normal(size=state_dim).astype(np.float32),
              'next_state': rng.normal(size=state_dim).astype(np.float32),
              'action': rng.normal(size=action_dim).astype(np.float32), 'reward': -0.25,
              'terminated': False, 'truncated': True, 'episode_id': 2 ** 40 + 3, 'step': 77,
              'policy_version': 9, 'intervention': True, 'stamp_ns': 1_700_000_000_000_000_123,
              'images': frames, 'next_images': {c: f[::-1].copy() for c, f in frames.items()}}
    for from_previous in (False, True):
        msg = TRANSITION.to_message(Transition(), 'arm_' + 'x' * state_dim, 2 ** 33 + 1, values,
                                    Image, from_previous=from_previous)
        raw = serialization.serialize_message(msg)
        want = TRANSITION.from_message(serialization.deserialize_message(raw, Transition))
        got = TRANSITION.from_message(CdrReader(Transition)(raw))
        assert sorted(got) == sorted(want)
        for key, value in want.items():
            if isinstance(value, dict):
                assert sorted(got[key]) == sorted(value), key
                for c in value:
                    np.testing.assert_array_equal(got[key][c], value[c], err_msg=f'{key}/{c}')
            else:
                np.testing.assert_array_equal(got[key], value, err_msg=key)
                assert np.asarray(got[key]).dtype == np.asarray(value).dtype, key
        with pytest.raises(ValueError, match='malformed|does not fit'):
            CdrReader(Transition)(raw[:len(raw) // 2])
