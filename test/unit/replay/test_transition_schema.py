"""The one transition schema: message, store, import and export all follow its definition,
and a new field is one edit in it (plus its line in Transition.msg)."""
import dataclasses
import json

import numpy as np
import pytest
from ros_env import require_workspace

from realrl_common.transition import (
    ACTION_DIM,
    EMBODIMENT,
    IMAGES_FROM_PREVIOUS,
    ROBOT_ID,
    SEQ,
    TRANSITION,
    Dims,
    TransitionField,
    decode_text,
)
from realrl_replay import ReplayReader, StoreConfig
from realrl_replay.export_lerobot import export_lerobot
from realrl_replay.import_demos import import_demos
from realrl_replay.ingest_core import STORED, IngestCore
from realrl_replay.synthetic import TransitionFactory, example_schema
from realrl_replay.transition_schema import store_schema

SMALL = StoreConfig(target_chunk_bytes=16 << 10, min_chunk_rows=4, max_chunk_rows=64,
                    large_row_bytes=512, max_shard_chunks=3)
ARM = {'robot_id': 'arm0', 'kind': 'arm', 'state_dim': 3, 'action_dim': 2,
       'state_layout': {'q': [0, 3]}, 'action_low': [-1, -1], 'action_high': [1, 1],
       'cameras': ['front'], 'image_size': [6, 8], 'control_hz': 10.0}
WIDE = {**ARM, 'robot_id': 'arm1', 'kind': 'wide', 'state_dim': 5, 'action_dim': 3,
        'state_layout': {'q': [0, 5]}, 'action_low': [-2] * 3, 'action_high': [2] * 3,
        'cameras': []}
EXTENDED = TRANSITION.extended(
    TransitionField('success_prob', 'float32', default=-1.0, store='classifier/success_prob',
                    lerobot='next.success_prob'),
    TransitionField('action_chunk', 'float32', (4, ACTION_DIM), default=0.0,
                    lerobot='action_chunk'))
"""What the next issues do: a classifier's label and an action chunk, one edit each."""


def values(seq, desc, rng):
    """A driver's transition (by field name) of robot ``desc``."""
    h, w = desc['image_size']
    frames = {cam: rng.integers(0, 255, (h, w, 3), np.uint8) for cam in desc['cameras']}
    return {'state': rng.normal(size=desc['state_dim']).astype(np.float32),
            'next_state': rng.normal(size=desc['state_dim']).astype(np.float32),
            'action': rng.uniform(-1, 1, desc['action_dim']).astype(np.float32),
            'reward': float(rng.normal()), 'terminated': bool(seq % 5 == 0),
            'truncated': False, 'episode_id': seq // 5, 'step': seq % 5,
            'policy_version': seq // 2, 'intervention': seq % 3 == 0,
            'stamp_ns': 1_700_000_000_123_456_789 + seq, 'images': frames,
            'instruction': ['pick the red cube', 'wipe the table ünder it'][seq % 2],
            'next_images': {c: f[::-1].copy() for c, f in frames.items()}}


def assert_same(a, b, name):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), name
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f'{name}/{k}')
    else:
        np.testing.assert_array_equal(np.asarray(a, np.asarray(b).dtype), b, err_msg=name)


def generated(module):
    """A generated message module (built workspace, scripts/env.sh sourced)."""
    require_workspace()
    return pytest.importorskip(module, reason='source scripts/env.sh for the generated messages')


def test_message_round_trip_with_the_generated_message_classes():
    Transition = generated('realrl_interfaces.msg').Transition
    Image = generated('sensor_msgs.msg').Image
    v = values(7, ARM, np.random.default_rng(0))
    msg = TRANSITION.to_message(Transition(), 'arm0', 7, v, Image)
    assert msg.header.stamp.sec == 1_700_000_000 and msg.images[0].header.frame_id == 'front'
    back = TRANSITION.from_message(msg)
    assert (back[ROBOT_ID], back[SEQ]) == ('arm0', 7)
    for f in TRANSITION.fields:
        if f.text:  # a str in the driver and the message, UTF-8 bytes in the store's form
            assert msg.instruction == v[f.name] and decode_text(back[f.name]) == v[f.name]
            continue
        assert_same(v[f.name], back[f.name], f.name)
    # fields the driver leaves out travel as their default; a required one is an error
    partial = {k: x for k, x in v.items() if k not in ('policy_version', 'images')}
    back = TRANSITION.from_message(TRANSITION.to_message(Transition(), 'arm0', 8, partial))
    assert back['policy_version'] == 0 and back['images'] == {}
    with pytest.raises(ValueError, match="'reward' is required"):
        TRANSITION.to_message(Transition(), 'arm0', 9, {**partial, 'reward': None})
    bad = TRANSITION.to_message(Transition(), 'arm0', 9, v)
    bad.images[0].encoding = 'bgr16'
    with pytest.raises(ValueError, match="field 'images'.*bgr16"):
        TRANSITION.from_message(bad)
    # past an episode's first step the obs frames stay home: the message says so
    once = TRANSITION.to_message(Transition(), 'arm0', 10, v, Image, from_previous=True)
    assert once.images_from_previous and list(once.images) == [] and len(once.next_images) == 1
    back = TRANSITION.from_message(once)
    assert back[IMAGES_FROM_PREVIOUS] is True and back['images'] == {}
    assert_same(v['next_images'], back['next_images'], 'next_images')
    assert IMAGES_FROM_PREVIOUS not in TRANSITION.from_message(msg)


def test_store_fields_follow_the_schema_for_one_or_several_robots():
    single = TRANSITION.store_fields(Dims.of(ARM))
    assert single['obs/state'] == ((3,), np.float32)
    assert single['next_obs/image_front'] == ((6, 8, 3), np.uint8)
    assert set(single) == {f.store_name('front') for f in TRANSITION.fields}
    shared, space = store_schema({'arm0': ARM, 'arm1': WIDE})
    assert shared['obs/state'][0] == (space.state_dim,) == (5,)
    assert shared['action'][0] == (3,) and shared[EMBODIMENT] == ((), np.int16)
    assert example_schema((4, 4), cameras=1)['obs/image_0'] == ((4, 4, 3), np.uint8)
    assert 'next_obs/image_0' not in example_schema((4, 4), cameras=1)


def test_transitions_round_trip_through_message_values_store_and_reader(tmp_path):
    """A driver's values -> (message values) -> the ingest core's records -> the store:
    every field comes back under its store name, padded into the shared space."""
    rng = np.random.default_rng(1)
    core = IngestCore(tmp_path / 's', ['arm0', 'arm1'])
    core.on_description(ARM)
    core.on_description(WIDE)
    sent = {}
    for seq in range(1, 7):
        for desc in (ARM, WIDE):
            v = values(seq, desc, rng)
            sent[desc['robot_id'], seq] = v
            assert core.on_transition({**v, ROBOT_ID: desc['robot_id'], SEQ: seq}).status \
                == STORED
    core.close()
    r = ReplayReader(tmp_path / 's')
    rows = r.read_range(0, r.count)
    space = core.space
    for i in range(r.count):
        robot = r.robot_names[rows[ROBOT_ID][i]]
        v = sent[robot, int(rows[SEQ][i])]
        e = int(rows[EMBODIMENT][i])
        assert_same(space.unpad_state(e, rows['obs/state'][i]), v['state'], 'state')
        assert_same(rows['action'][i][:len(v['action'])], v['action'], 'action')
        assert not rows['action'][i][len(v['action']):].any()
        for f in TRANSITION.fields:
            if f.per_camera:
                frame = rows[f.store_name('front')][i]
                assert_same(frame, v[f.name].get('front', np.zeros_like(frame)), f.name)
            elif f.text:
                assert decode_text(rows[f.store_name()][i]) == v[f.name], f.name
            elif f.name not in ('state', 'next_state', 'action'):
                assert_same(rows[f.store_name()][i], np.asarray(v[f.name], f.dtype), f.name)


def test_an_added_field_reaches_message_store_import_export_and_synthetic_data(tmp_path):
    """One TransitionField more (and its .msg line): nothing else is edited."""
    Transition = generated('realrl_interfaces.msg').Transition

    class ExtendedTransition(Transition):
        """The generated message as if Transition.msg had the two new lines."""

        def __init__(self):
            super().__init__()
            self.success_prob, self.action_chunk = 0.0, []

    fields, space = store_schema({'arm0': ARM, 'arm1': WIDE}, EXTENDED)
    assert fields['classifier/success_prob'] == ((), np.float32)
    assert fields['action_chunk'] == ((4, space.action_dim), np.float32)
    # message, both sides
    rng = np.random.default_rng(2)
    v = {**values(1, ARM, rng), 'success_prob': 0.75,
         'action_chunk': np.arange(8, dtype=np.float32)}
    back = EXTENDED.from_message(EXTENDED.to_message(ExtendedTransition(), 'arm0', 1, v))
    assert back['success_prob'] == np.float32(0.75)
    assert_same(back['action_chunk'], v['action_chunk'], 'action_chunk')
    # store: padded like the action; a sender without the field stores its default
    core = IngestCore(tmp_path / 'online', ['arm0', 'arm1'], schema=EXTENDED)
    core.on_description(ARM)
    core.on_description(WIDE)
    assert core.on_transition(back).status == STORED
    old_sender = {**values(1, WIDE, rng), ROBOT_ID: 'arm1', SEQ: 1}
    assert core.on_transition(old_sender).status == STORED
    unfilled = EXTENDED.to_message(ExtendedTransition(), 'arm0', 2, values(2, ARM, rng))
    assert core.on_transition(EXTENDED.from_message(unfilled)).status == STORED
    core.close()
    rows = ReplayReader(tmp_path / 'online').read_range(0, 3)
    np.testing.assert_array_equal(rows['action_chunk'][0],
                                  [[0, 1, 0], [2, 3, 0], [4, 5, 0], [6, 7, 0]])
    assert not rows['action_chunk'][1:].any()
    assert rows['classifier/success_prob'].tolist() == [0.75, -1.0, -1.0]
    # synthetic data
    fac = TransitionFactory(example_schema((4, 4), cameras=1, fields=EXTENDED), bank_size=4)
    assert fac.make('a', [3])['action_chunk'].shape == (1, 4, 7)
    # import (demos lack the field: its default) and export (its LeRobot name)
    folder = tmp_path / 'session'
    folder.mkdir()
    T = 4
    np.savez(folder / 'ep0.npz', **{'obs/q': rng.normal(size=(T, 3)),
                                    'obs/front_image': rng.integers(0, 255, (T, 6, 8, 3),
                                                                    np.uint8),
                                    'actions': rng.normal(size=(T, 2)),
                                    'rewards': np.zeros(T), 'dones': np.eye(T)[-1]})
    import_demos(tmp_path / 'demo', folder, fields=EXTENDED, control_hz=5,
                 store_config=SMALL)
    demo = ReplayReader(tmp_path / 'demo')
    rows = demo.read_range(0, demo.count)
    assert rows['classifier/success_prob'].tolist() == [-1.0] * T
    assert rows['action_chunk'].shape == (T, 4, 2) and not rows['action_chunk'].any()
    export_lerobot(tmp_path / 'demo', tmp_path / 'ds', fields=EXTENDED)
    info = json.loads((tmp_path / 'ds' / 'meta' / 'info.json').read_text())
    assert {'next.success_prob', 'action_chunk', 'observation.images.front',
            'observation.state', 'action', 'next.reward'} <= set(info['features'])
    assert info['realrl']['fields']['next.success_prob'] == 'classifier/success_prob'


def test_the_driver_loop_fills_every_required_field():
    from realrl_driver.core.episode_loop import Transition as LoopTransition
    names = {f.name for f in dataclasses.fields(LoopTransition)}
    required = {f.name for f in TRANSITION.fields if f.default is None}
    assert required <= names
    assert names - {'seq'} <= set(TRANSITION.by_name)  # no field the schema does not know


@pytest.mark.parametrize('extra, words', [
    (TransitionField('state', 'float32'), 'repeat the name'),
    (TransitionField('x', 'float32', store='obs/state'), 'repeat the store name'),
    (TransitionField(EMBODIMENT, 'int16'), 'reserved'),
    (TransitionField('depth', 'uint16', (4, 4), store='obs/depth', per_camera=True),
     '{cam}'),
    (TransitionField('language', 'text'), "dtype 'text'"),
])
def test_a_bad_schema_names_the_problem(extra, words):
    with pytest.raises(ValueError, match=words.replace('{', r'\{').replace('}', r'\}')):
        TRANSITION.extended(extra)


def test_a_store_made_before_a_field_was_added_is_refused_for_writing_and_stays_readable(
        tmp_path):
    core = IngestCore(tmp_path / 's', ['arm0'])
    core.on_description(ARM)
    core.on_transition({**values(1, ARM, np.random.default_rng(3)), ROBOT_ID: 'arm0', SEQ: 1})
    core.close()
    with pytest.raises(ValueError, match=r"classifier/success_prob.*new store_path"):
        IngestCore(tmp_path / 's', ['arm0'], schema=EXTENDED)
    assert ReplayReader(tmp_path / 's').count == 1
    IngestCore(tmp_path / 's', ['arm0']).close()   # the lock was released
