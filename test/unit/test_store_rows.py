"""The tests' store records come whole from the transition's definition: a record names
only what it is about, and a field added to the schema with a default needs no test edit."""
import numpy as np
import pytest
from store_rows import store_record

from realrl_common.transition import ACTION_DIM, TRANSITION, TransitionField
from realrl_replay.reader import ReplayReader
from realrl_replay.transition_schema import transition_schema
from realrl_replay.writer import ReplayWriter

DESC = {'robot_id': 'arm0', 'state_dim': 3, 'action_dim': 2, 'action_low': [-1.0] * 2,
        'action_high': [1.0] * 2, 'cameras': ['wrist'], 'image_size': [4, 6]}
REQUIRED = {'robot_id': 'arm0', 'seq': 1, 'obs/state': np.ones(3, np.float32),
            'next_obs/state': np.ones(3, np.float32), 'action': np.full(2, 0.5, np.float32),
            'reward': np.float32(-1), 'terminated': False, 'truncated': True, 'episode_id': 4,
            'step': 9}


def test_a_record_of_the_required_fields_is_stored_with_every_default(tmp_path):
    writer = ReplayWriter.create(tmp_path / 's', transition_schema(DESC),
                                 {'robots': {'arm0': DESC}})
    writer.append([store_record(writer, REQUIRED),
                   store_record(writer, {**REQUIRED, 'seq': 2, 'policy_version': 7})])
    writer.commit()
    without_reward = store_record(writer, {k: v for k, v in REQUIRED.items() if k != 'reward'})
    with pytest.raises(ValueError, match='reward'):  # no default: the writer names it
        writer.append([{**without_reward, 'seq': 3}])
    writer.close()
    rows = ReplayReader(tmp_path / 's').read([0, 1])
    assert rows['policy_version'].tolist() == [0, 7] and rows['step'].tolist() == [9, 9]
    assert not rows['intervention'].any() and not rows['instruction'].any()
    assert rows['obs/image_wrist'].shape == (2, 4, 6, 3) and not rows['obs/image_wrist'].any()


def test_a_new_field_with_a_default_needs_no_edit_of_the_records(tmp_path):
    extended = TRANSITION.extended(TransitionField('next_action', 'float32', (ACTION_DIM,),
                                                   store='next/action', default=0.25))
    desc = {**DESC, 'cameras': [], 'image_size': [0, 0]}
    writer = ReplayWriter.create(tmp_path / 's', transition_schema(desc, extended),
                                 {'robots': {'arm0': desc}})
    writer.append([store_record(writer, REQUIRED, extended)])  # the same record as before
    writer.commit()
    writer.close()
    assert ReplayReader(tmp_path / 's').read([0])['next/action'].tolist() == [[0.25, 0.25]]
