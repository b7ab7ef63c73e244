"""The replay node's protocol without ROS: gap-free seqs, early transitions, padding, records,
acks and the reopen state, on real stores on disk."""
from dataclasses import replace

import numpy as np
import pytest

from realrl_common.transition import EMBODIMENT, IMAGES_FROM_PREVIOUS, ROBOT_ID, SEQ
from realrl_replay import ReplayReader, StoreError
from realrl_replay.ingest_core import (
    DUPLICATE,
    EARLY,
    OUT_OF_ORDER,
    REJECTED,
    STORED,
    Ack,
    IngestCore,
)
from realrl_replay.layout import MarkerSlots
from realrl_replay.store import StoreInfo

ARM = {'robot_id': 'arm0', 'kind': 'arm', 'state_dim': 3, 'action_dim': 2,
       'state_layout': {'q': [0, 2], 'goal': [2, 3]}, 'action_low': [-1, -1],
       'action_high': [1, 1], 'cameras': ['front'], 'image_size': [4, 6]}
SIX = {**ARM, 'robot_id': 'arm1', 'kind': 'six', 'state_dim': 4, 'action_dim': 3,
       'state_layout': {'q': [0, 3], 'goal': [3, 4]}, 'action_low': [-2] * 3,
       'action_high': [2] * 3, 'cameras': []}


def tr(robot, seq, episode=0, dim=3, act=2, **kw):
    """A decoded transition whose state holds its seq."""
    return {ROBOT_ID: robot, SEQ: seq, 'state': np.full(dim, seq, np.float32),
            'next_state': np.full(dim, seq + 1, np.float32),
            'action': np.full(act, 0.5, np.float32), 'reward': -1.0, 'terminated': False,
            'truncated': False, 'episode_id': episode, 'step': seq, **kw}


def core_with(path, *descs):
    core = IngestCore(path, [d['robot_id'] for d in descs], max_wait_s=0.0)
    for d in descs:
        core.on_description(d)
    return core


def commit(core):
    """One tick that starts a commit and one after it finished: the acks it made."""
    core.tick()
    core.writer.wait()
    return core.tick()


def stored(path):
    r = ReplayReader(path)
    rows = r.read_range(0, r.count)
    return [(r.robot_names[c], int(s)) for c, s in zip(rows[ROBOT_ID], rows[SEQ])], rows


def test_a_gap_waits_for_its_resend_and_duplicates_are_dropped(tmp_path):
    core = core_with(tmp_path / 's', ARM)
    status = [core.on_transition(tr('arm0', s)).status for s in (1, 3, 2, 2, 1, 3)]
    assert status == [STORED, OUT_OF_ORDER, STORED, DUPLICATE, DUPLICATE, STORED]
    assert core.counters[OUT_OF_ORDER] == 1 and core.counters[DUPLICATE] == 2
    assert commit(core) == [Ack('arm0', 3, 3)]
    core.close()
    assert stored(tmp_path / 's')[0] == [('arm0', 1), ('arm0', 2), ('arm0', 3)]


def test_early_transitions_wait_for_every_description_then_go_in_order(tmp_path):
    core = IngestCore(tmp_path / 's', ['arm0', 'arm1'], max_wait_s=0.0)
    assert core.on_transition(tr('arm0', 1)).status == EARLY
    assert core.on_transition(tr('arm0', 3)).status == EARLY   # a gap, even while early
    assert core.on_transition(tr('arm0', 2)).status == EARLY
    assert core.on_description(ARM) == (False, '')
    assert core.writer is None and core.tick() == [] and core.all_acks() == []
    assert not (tmp_path / 's').exists()
    assert core.on_description(SIX) == (True, '')
    assert core.all_acks() == []   # taken, not yet durable: nothing acknowledged
    assert commit(core) == [Ack('arm0', 2, 2)]
    core.close()
    assert stored(tmp_path / 's')[0] == [('arm0', 1), ('arm0', 2)]


def test_rows_are_padded_into_the_shared_space_with_their_embodiment(tmp_path):
    core = core_with(tmp_path / 's', ARM, SIX)
    assert core.on_transition(tr('arm0', 1)).status == STORED
    assert core.on_transition(tr('arm1', 1, dim=4, act=3)).status == STORED
    commit(core)
    core.close()
    names, rows = stored(tmp_path / 's')
    assert core.space.layout == {'q': (0, 3), 'goal': (3, 4)}
    e0, e1 = core.embodiment['arm0'], core.embodiment['arm1']
    assert rows[EMBODIMENT].tolist() == [e0, e1] and e0 != e1
    np.testing.assert_array_equal(rows['obs/state'], [[1, 1, 0, 1], [1, 1, 1, 1]])
    np.testing.assert_array_equal(rows['action'], [[0.5, 0.5, 0], [0.5, 0.5, 0.5]])
    assert not rows['obs/image_front'][1].any()   # arm1 has no camera: a black frame


def test_records_that_do_not_fit_are_rejected_and_named(tmp_path):
    core = core_with(tmp_path / 's', ARM)
    frame = np.full((4, 6, 3), 7, np.uint8)
    cases = [(tr('arm0', 1, dim=5), 'state has 5 values'),
             (tr('arm0', 1, reward=float('nan')), 'reward is not finite'),
             (tr('arm0', 1, images={'side': frame}), "cameras ['side']"),
             ({k: v for k, v in tr('arm0', 1).items() if k != 'step'}, "'step' is required"),
             (tr('ghost', 1), 'ghost has no embodiment')]
    for values, words in cases:
        outcome = core.on_transition(values)
        assert outcome.status == REJECTED and words in outcome.error, outcome
    assert core.counters[REJECTED] == len(cases)
    ok = core.on_transition(tr('arm0', 1, images={'front': frame}))  # seq 1 still expected
    assert ok.status == STORED
    commit(core)
    core.close()
    names, rows = stored(tmp_path / 's')
    assert names == [('arm0', 1)] and (rows['obs/image_front'] == 7).all()
    assert rows['policy_version'].tolist() == [0] and rows['stamp_ns'].tolist() == [0]


def test_acks_come_only_from_finished_commits_and_repeat(tmp_path):
    core = core_with(tmp_path / 's', ARM, SIX)
    core.on_transition(tr('arm0', 1))
    assert core.tick() == []          # the commit starts; nothing is durable yet
    core.writer.wait()
    core.on_transition(tr('arm0', 2))
    assert core.tick() == [Ack('arm0', 1, 1)]   # the finished one; seq 2 is in the next
    core.writer.wait()
    assert core.tick() == [Ack('arm0', 2, 2)]
    core.on_transition(tr('arm1', 1, dim=4, act=3))
    assert commit(core) == [Ack('arm1', 1, 3)]   # arm0's seq did not move: no new ack
    assert sorted(core.all_acks(), key=lambda a: a.robot_id) == [Ack('arm0', 2, 3),
                                                                 Ack('arm1', 1, 3)]
    core.close()


def test_sender_state_commits_first_and_says_where_to_continue(tmp_path):
    core = core_with(tmp_path / 's', ARM)
    assert core.sender_state('arm0')[0].known is False
    for s in range(1, 5):
        core.on_transition(tr('arm0', s, episode=s // 2))
    state, acks = core.sender_state('arm0')
    assert (state.known, state.committed_seq, state.last_episode_id, state.stored) == (
        True, 4, 2, 4)
    assert acks == [Ack('arm0', 4, 4)]
    core.close()


def test_reopen_takes_seqs_and_episodes_from_the_marker_without_reading_rows(
        tmp_path, monkeypatch):
    core = core_with(tmp_path / 's', ARM, SIX)
    for s in range(1, 40):
        core.on_transition(tr('arm0', s, episode=s // 10))
    core.on_transition(tr('arm1', 1, episode=5, dim=4, act=3))
    core.close()

    def no_row_reads(*args, **kw):
        raise AssertionError('reopening read rows')
    monkeypatch.setattr(ReplayReader, 'read_range', no_row_reads)
    core = IngestCore(tmp_path / 's', ['arm0', 'arm1'], max_wait_s=0.0)
    state = core.sender_state('arm0')[0]
    assert (state.committed_seq, state.last_episode_id) == (39, 3)
    assert core.sender_state('arm1')[0].last_episode_id == 5
    assert core.embodiment == {'arm0': 0, 'arm1': 1}     # from the store's metadata
    assert core.on_transition(tr('arm0', 39)).status == DUPLICATE
    assert core.on_transition(tr('arm0', 41)).status == OUT_OF_ORDER
    assert core.on_transition(tr('arm0', 40, episode=4)).status == STORED
    assert core.all_acks() and commit(core) == [Ack('arm0', 40, 41)]
    # a robot that no longer fits the store's space is refused, by name
    created, error = core.on_description({**ARM, 'action_high': [3, 3]})
    assert not created and 'arm0' in error and 'new store_path' in error
    assert 'no embodiment' in core.on_transition(tr('arm0', 41)).error
    core.close()


def test_a_store_whose_marker_lacks_episodes_is_scanned_once(tmp_path, monkeypatch):
    core = core_with(tmp_path / 's', ARM)
    for s in range(1, 20):
        core.on_transition(tr('arm0', s, episode=s // 4))
    core.close()
    info = StoreInfo.load(tmp_path / 's')   # rewrite the marker as older writers did
    marker = info.read_marker()
    slots = MarkerSlots(info.root)
    slots.write(replace(marker, episodes=None, commit_id=marker.commit_id + 1), info.schema,
                fsync=False)
    slots.close()
    assert StoreInfo.load(tmp_path / 's').read_marker().episodes is None

    reads = []
    real = ReplayReader.read_range
    monkeypatch.setattr(ReplayReader, 'read_range',
                        lambda *a, **k: reads.append(1) or real(*a, **k))
    core = IngestCore(tmp_path / 's', ['arm0'], max_wait_s=0.0)
    assert reads and core.sender_state('arm0')[0].last_episode_id == 4
    core.on_transition(tr('arm0', 20, episode=5))
    commit(core)
    core.close()
    assert StoreInfo.load(tmp_path / 's').read_marker().episodes == (5,)
    reads.clear()
    core = IngestCore(tmp_path / 's', ['arm0'], max_wait_s=0.0)  # the marker has it: no scan
    assert not reads and core.sender_state('arm0')[0].last_episode_id == 5
    core.close()


def test_a_folder_that_is_not_a_store_is_refused(tmp_path):
    (tmp_path / 'photos').mkdir()
    (tmp_path / 'photos' / 'cat.jpg').write_bytes(b'not a store')
    with pytest.raises(StoreError, match='photos'):
        IngestCore(tmp_path / 'photos', ['arm0'])


def frame(k):
    return np.full((4, 6, 3), k, np.uint8)


def test_frames_sent_once_come_from_the_previous_transition_also_after_a_reopen(tmp_path):
    core = core_with(tmp_path / 's', ARM)
    once = {IMAGES_FROM_PREVIOUS: True, 'images': {}}
    assert 'not in the store' in core.on_transition(
        tr('arm0', 1, step=0, **once, next_images={'front': frame(1)})).error
    assert core.on_transition(tr('arm0', 1, step=0, images={'front': frame(9)},
                                 next_images={'front': frame(1)})).status == STORED
    assert core.on_transition(tr('arm0', 2, step=1, **once,
                                 next_images={'front': frame(2)})).status == STORED
    wrong = core.on_transition(tr('arm0', 3, episode=1, step=2, **once,
                                  next_images={'front': frame(3)}))
    assert wrong.status == REJECTED and 'episode 0 step 1' in wrong.error
    core.close()
    core = IngestCore(tmp_path / 's', ['arm0'], max_wait_s=0.0)   # holds no frames: reads #2
    assert core.on_transition(tr('arm0', 3, step=2, **once,
                                 next_images={'front': frame(3)})).status == STORED
    core.close()
    rows = ReplayReader(tmp_path / 's').read_range(0, 3)
    assert [int(x[0, 0, 0]) for x in rows['obs/image_front']] == [9, 1, 2]
    assert [int(x[0, 0, 0]) for x in rows['next_obs/image_front']] == [1, 2, 3]


def test_ticks_commit_at_chunk_boundaries_and_a_waiting_tail_after_max_wait(tmp_path):
    core = core_with(tmp_path / 's', ARM)
    core.max_wait_s = 3600.0
    boundary = core.writer.boundary_rows
    for s in range(1, 6):
        core.on_transition(tr('arm0', s))
    assert core.tick() == [] and core.writer.wait().count == 0   # waits for the boundary
    for s in range(6, boundary + 4):
        core.on_transition(tr('arm0', s))
    core.tick()
    assert core.writer.wait().count == boundary and core.writer.pending == 3
    assert StoreInfo.load(tmp_path / 's').read_marker().tails['obs/image_front'].shape[0] == 0
    core.tick()
    assert core.writer.wait().count == boundary       # the rest has not waited long enough
    core.max_wait_s = 0.0
    core.tick()
    assert core.writer.wait().count == boundary + 3
    core.close()
