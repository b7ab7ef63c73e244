"""LeRobotDataset v3.0 export of a real store, read back with pyarrow and OpenCV and checked
against what LeRobot's loader relies on (LeRobot itself does not install beside our pins)."""
import json

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from realrl_replay.export_lerobot_v3 import export_lerobot_v3, main
from realrl_replay.import_demos import DemoFormatError, import_demos
from realrl_replay.reader import ReplayReader
from realrl_replay.transition_schema import transition_schema
from realrl_replay.writer import ReplayWriter

H, W = 16, 24
DESC = {'robot_id': 'arm0', 'state_dim': 3, 'action_dim': 2, 'action_low': [-1.0, -1.0],
        'action_high': [1.0, 1.0], 'cameras': ['wrist'], 'image_size': [H, W],
        'control_hz': 10.0, 'kind': 'toy_arm'}
EPISODES = [('pick the red cube', 5), ('', 4), ('pick the red cube', 6)]


def text(s: str) -> np.ndarray:
    out = np.zeros(256, np.uint8)
    out[:len(s)] = np.frombuffer(s.encode(), np.uint8)
    return out


def frame(level: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    img[:] = (level, 255 - level, 128)  # flat colours survive MPEG-4 within a few levels
    return img


def make_store(path):
    writer = ReplayWriter.create(path, transition_schema(DESC), {'robots': {'arm0': DESC}})
    records, seq = [], 0
    for e, (instruction, n) in enumerate(EPISODES):
        for t in range(n):
            seq += 1
            records.append({
                'robot_id': 'arm0', 'seq': seq, 'obs/state': np.full(3, seq, np.float32),
                'next_obs/state': np.zeros(3, np.float32),
                'action': np.array([t / 10, -t / 10], np.float32), 'reward': np.float32(t),
                'terminated': t == n - 1, 'truncated': False, 'episode_id': e, 'step': t,
                'policy_version': 0, 'intervention': False, 'stamp_ns': 0,
                'instruction': text(instruction), 'obs/image_wrist': frame(10 * seq),
                'next_obs/image_wrist': frame(0)})
    writer.append(records)
    writer.commit()
    writer.close()


def test_v3_layout_episodes_tasks_data_and_video_agree(tmp_path):
    make_store(tmp_path / 's')
    report = export_lerobot_v3(tmp_path / 's', tmp_path / 'ds', task='default task')
    total = sum(n for _, n in EPISODES)
    assert (report.episodes, report.frames) == (3, total)
    ds = tmp_path / 'ds'
    info = json.loads((ds / 'meta' / 'info.json').read_text())
    assert info['codebase_version'] == 'v3.0' and info['fps'] == 10
    assert (info['total_episodes'], info['total_frames'], info['total_tasks']) == (3, total, 2)
    video = info['features']['observation.images.wrist']
    assert video['dtype'] == 'video' and video['shape'] == [H, W, 3]
    assert video['info']['video.codec'] == 'mpeg4' and video['info']['video.fps'] == 10

    tasks = pq.read_table(ds / 'meta' / 'tasks.parquet')
    assert json.loads(tasks.schema.metadata[b'pandas'])['index_columns'] == ['task']
    task_of = dict(zip(tasks.column('task').to_pylist(), tasks.column('task_index').to_pylist()))
    assert task_of == {'pick the red cube': 0, 'default task': 1}

    eps = pq.read_table(ds / 'meta' / 'episodes' / 'chunk-000' / 'file-000.parquet').to_pylist()
    assert [e['episode_index'] for e in eps] == [0, 1, 2]
    assert [e['length'] for e in eps] == [n for _, n in EPISODES]
    assert [e['tasks'] for e in eps] == [['pick the red cube'], ['default task'],
                                         ['pick the red cube']]
    bounds = [(e['dataset_from_index'], e['dataset_to_index']) for e in eps]
    assert bounds == [(0, 5), (5, 9), (9, 15)]
    assert all(e['meta/episodes/chunk_index'] == 0 for e in eps)
    assert eps[0]['stats/action/count'] == [5]

    rows = ReplayReader(tmp_path / 's').read_range(0, total)
    data = pq.read_table(ds / info['data_path'].format(chunk_index=eps[0]['data/chunk_index'],
                                                       file_index=eps[0]['data/file_index']))
    assert 'observation.images.wrist' not in data.column_names  # it is in the video
    # LeRobot loads the data files with the Features of every non-video feature: the same set
    assert set(data.column_names) == {k for k, f in info['features'].items()
                                      if f['dtype'] != 'video'}
    t = data.to_pydict()
    assert t['index'] == list(range(total))
    np.testing.assert_allclose(np.array(t['action']), rows['action'])
    np.testing.assert_allclose(np.array(t['observation.state']), rows['obs/state'])
    assert t['task_index'] == [0] * 5 + [1] * 4 + [0] * 6
    for e, (lo, hi) in zip(eps, bounds):  # timestamps restart per episode, at 1 / fps
        np.testing.assert_allclose(t['timestamp'][lo:hi], np.arange(hi - lo) / 10, rtol=1e-6)
        assert t['episode_index'][lo:hi] == [e['episode_index']] * (hi - lo)

    key = 'observation.images.wrist'
    path = ds / info['video_path'].format(video_key=key, chunk_index=0, file_index=0)
    cap = cv2.VideoCapture(str(path))
    frames = []
    ok, img = cap.read()
    while ok:
        frames.append(img[..., ::-1])
        ok, img = cap.read()
    cap.release()
    assert len(frames) == total
    for e, (lo, hi) in zip(eps, bounds):  # an episode's frames sit at its time span
        first = round(e[f'videos/{key}/from_timestamp'] * 10)
        assert (first, round(e[f'videos/{key}/to_timestamp'] * 10)) == (lo, hi)
        for j in range(lo, hi):
            diff = np.abs(frames[j].astype(int) - rows['obs/image_wrist'][j].astype(int))
            assert diff.mean() < 6, (j, diff.mean())


def test_without_videos_frames_stay_in_the_rows_and_bad_input_is_refused(tmp_path, capsys):
    make_store(tmp_path / 's')
    export_lerobot_v3(tmp_path / 's', tmp_path / 'ds', videos=False)
    info = json.loads((tmp_path / 'ds' / 'meta' / 'info.json').read_text())
    assert info['features']['observation.images.wrist']['dtype'] == 'image'
    assert info['video_path'] is None and not (tmp_path / 'ds' / 'videos').exists()
    data = pq.read_table(tmp_path / 'ds' / 'data' / 'chunk-000' / 'file-000.parquet')
    cell = data.column('observation.images.wrist')[0].as_py()
    img = cv2.imdecode(np.frombuffer(cell['bytes'], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(img, frame(10))
    with pytest.raises(ValueError, match='whole number of frames'):
        export_lerobot_v3(tmp_path / 's', tmp_path / 'other', fps=7.5)
    assert main([str(tmp_path / 's'), str(tmp_path / 'ds')]) == 2  # not empty: refused
    assert 'not an empty folder' in capsys.readouterr().err


def test_a_v3_dataset_imports_as_demonstrations_with_its_tasks_as_instructions(tmp_path):
    make_store(tmp_path / 's')
    export_lerobot_v3(tmp_path / 's', tmp_path / 'ds', task='default task')
    report = import_demos(tmp_path / 'demo', tmp_path / 'ds')  # format detected
    total = sum(n for _, n in EPISODES)
    assert (report.episodes, report.transitions) == (3, total)
    src, demo = ReplayReader(tmp_path / 's'), ReplayReader(tmp_path / 'demo')
    a, b = src.read_range(0, total), demo.read_range(0, total)
    np.testing.assert_allclose(b['action'], a['action'])
    np.testing.assert_allclose(b['obs/state'], a['obs/state'])
    np.testing.assert_allclose(b['reward'], a['reward'])
    np.testing.assert_array_equal(b['terminated'], a['terminated'])
    assert b['intervention'].all()
    assert np.abs(b['obs/image_wrist'].astype(int) - a['obs/image_wrist']).mean() < 6
    assert demo.read_text(range(total)) == (['pick the red cube'] * 5 + ['default task'] * 4
                                            + ['pick the red cube'] * 6)
    assert demo.metadata['robots']['demo']['control_hz'] == 10.0
    assert demo.metadata['origin']['format'] == 'lerobot'
    (tmp_path / 'v2').mkdir()
    (tmp_path / 'v2' / 'meta').mkdir()
    (tmp_path / 'v2' / 'meta' / 'info.json').write_text('{"codebase_version": "v2.1"}')
    with pytest.raises(DemoFormatError, match="v3.0"):
        import_demos(tmp_path / 'demo2', tmp_path / 'v2')
