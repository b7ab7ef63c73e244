"""Importing demonstrations (robomimic HDF5, npz sessions, stores) and exporting LeRobot."""
import json

import numpy as np
import pytest
from _replay_fixtures import factory, make_writer, tree_digest

from realrl_replay import ReplayReader, SamplerConfig, StoreError, open_sources
from realrl_replay.export_lerobot import export_lerobot
from realrl_replay.export_lerobot import main as export_main
from realrl_replay.import_demos import DemoFormatError, import_demos
from realrl_replay.import_demos import main as import_main

LENGTHS = (5, 8, 3)


def demo_arrays(i, T):
    rng = np.random.default_rng(i)
    obs = {'robot0_eef_pos': rng.normal(size=(T + 1, 3)).astype(np.float32),
           'object': rng.normal(size=(T + 1, 2)),
           'agentview_image': rng.integers(0, 255, (T + 1, 12, 10, 3), dtype=np.uint8)}
    dones = np.zeros(T, np.int64)
    dones[-1] = i != 1  # demo 1 ends without success: truncated
    return {'obs': {k: v[:T] for k, v in obs.items()},
            'next_obs': {k: v[1:] for k, v in obs.items()},
            'actions': rng.uniform(-1, 1, (T, 4)), 'rewards': rng.normal(size=T),
            'dones': dones}


def write_robomimic(path, with_next=True):
    import h5py
    with h5py.File(path, 'w') as f:
        data = f.create_group('data')
        data.attrs['env_args'] = json.dumps({'env_name': 'Lift'})
        for i, T in enumerate(LENGTHS):
            d = demo_arrays(i, T)
            g = data.create_group(f'demo_{i}')
            for side in ('obs', 'next_obs') if with_next else ('obs',):
                for k, v in d[side].items():
                    g.create_dataset(f'{side}/{k}', data=v)
            for k in ('actions', 'rewards', 'dones'):
                g.create_dataset(k, data=d[k])


def test_robomimic_import_maps_every_step(tmp_path):
    src = tmp_path / 'lift.hdf5'
    write_robomimic(src)
    report = import_demos(tmp_path / 'demo', src, control_hz=20)
    assert (report.episodes, report.transitions) == (3, sum(LENGTHS))
    r = ReplayReader(tmp_path / 'demo')
    meta = r.metadata
    assert meta['source'] == 'demo' and meta['origin']['env_args'] == {'env_name': 'Lift'}
    desc = meta['robots']['demo']
    assert desc['state_layout'] == {'object': [0, 2], 'robot0_eef_pos': [2, 5]}
    assert (desc['state_dim'], desc['action_dim'], desc['cameras']) == (5, 4, ['agentview'])
    rows = r.read_range(0, r.count)
    at = 0
    for i, T in enumerate(LENGTHS):
        d = demo_arrays(i, T)
        sl = slice(at, at + T)
        state = np.concatenate([d['obs']['object'], d['obs']['robot0_eef_pos']], 1)
        np.testing.assert_allclose(rows['obs/state'][sl], state.astype(np.float32))
        np.testing.assert_array_equal(rows['obs/image_agentview'][sl], d['obs']['agentview_image'])
        np.testing.assert_array_equal(rows['next_obs/image_agentview'][sl],
                                      d['next_obs']['agentview_image'])
        np.testing.assert_allclose(rows['action'][sl], d['actions'].astype(np.float32))
        assert rows['terminated'][sl].tolist() == d['dones'].astype(bool).tolist()
        assert rows['truncated'][sl][-1] == (i == 1)
        assert (rows['episode_id'][sl] == i).all() and rows['step'][sl].tolist() == list(range(T))
        assert rows['intervention'][sl].all()
        at += T
    assert rows['stamp_ns'][1] == 50_000_000


def test_npz_session_and_store_imports_and_cli(tmp_path, capsys):
    session = tmp_path / 'teleop'
    session.mkdir()
    for i, T in enumerate(LENGTHS):
        d = demo_arrays(i, T)
        np.savez(session / f'ep{i:03d}.npz', actions=d['actions'], rewards=d['rewards'],
                 dones=d['dones'], **{f'obs/{k}': v for k, v in d['obs'].items()})
    (session / 'session.json').write_text(json.dumps({'robot_description': {'kind': 'arm'}}))
    assert import_main([str(tmp_path / 'demo'), str(session), '--robot', 'op',
                        '--state-keys', 'robot0_eef_pos']) == 0
    assert 'imported 3 episodes, 16 transitions' in capsys.readouterr().out
    r = ReplayReader(tmp_path / 'demo')
    assert r.metadata['robots']['op']['kind'] == 'arm'
    assert r.schema.by_name['obs/state'].shape == (3,)
    rows = r.read_range(0, 5, ['obs/image_agentview', 'next_obs/image_agentview'])
    np.testing.assert_array_equal(rows['next_obs/image_agentview'][:4],
                                  rows['obs/image_agentview'][1:])    # derived next_obs
    np.testing.assert_array_equal(rows['next_obs/image_agentview'][4],
                                  rows['obs/image_agentview'][4])     # last: the last obs

    fac = factory(episode_len=10)
    with make_writer(tmp_path / 'online') as w:
        for robot in ('a', 'b'):
            cols = fac.make(robot, np.arange(60))
            cols['intervention'] = cols['seq'] % 3 == 0
            w.append(cols)
    import_demos(tmp_path / 'interventions', tmp_path / 'online', robots=['b'],
                 where=('intervention', True))
    r = ReplayReader(tmp_path / 'interventions')
    rows = r.read_range(0, r.count)
    assert r.count == 20 and r.robot_names == ('b',) and rows['intervention'].all()
    assert r.metadata['source'] == 'demo' and r.metadata['origin']['metadata'] == {'task': 'test'}
    with open_sources([tmp_path / 'online', tmp_path / 'interventions'],
                      SamplerConfig(cache_bytes=4 << 20, batch_size=32)) as mix:
        assert len(mix.sample()['seq']) == 32


def test_bad_inputs_and_outputs_are_refused_without_writing(tmp_path, capsys):
    src = tmp_path / 'lift.hdf5'
    write_robomimic(src, with_next=False)
    busy = tmp_path / 'busy'
    busy.mkdir()
    (busy / 'keep.txt').write_text('mine')
    before = tree_digest(busy)
    with pytest.raises(StoreError, match='not an empty folder'):
        import_demos(busy, src)
    assert tree_digest(busy) == before
    import h5py
    with h5py.File(tmp_path / 'other.hdf5', 'w') as f:
        f.create_dataset('images', data=np.zeros(3))
    with pytest.raises(DemoFormatError, match="no group 'data'"):
        import_demos(tmp_path / 'x', tmp_path / 'other.hdf5')
    (tmp_path / 'photos').mkdir()
    (tmp_path / 'photos' / 'realrl_replay.json').write_text('{}')  # looks like a store
    assert import_main([str(tmp_path / 'y'), str(tmp_path / 'photos')]) == 2
    assert 'corrupted' in capsys.readouterr().err
    assert not (tmp_path / 'x').exists() and not (tmp_path / 'y').exists()
    assert not list(tmp_path.glob('.*importing*'))
    assert export_main([str(tmp_path / 'photos'), str(tmp_path / 'z')]) == 2
    assert not (tmp_path / 'z').exists()
    import_demos(tmp_path / 'ok', src)
    with pytest.raises(StoreError, match='not an empty folder'):
        export_lerobot(tmp_path / 'ok', busy)
    assert tree_digest(busy) == before


def test_lerobot_export_round_trip(tmp_path):
    import cv2
    import pyarrow.parquet as pq
    src = tmp_path / 'lift.hdf5'
    write_robomimic(src)
    import_demos(tmp_path / 'demo', src, control_hz=10)
    store = ReplayReader(tmp_path / 'demo')
    before = tree_digest(tmp_path / 'demo')
    report = export_lerobot(tmp_path / 'demo', tmp_path / 'ds', task='lift the cube')
    assert tree_digest(tmp_path / 'demo') == before
    assert (report.episodes, report.frames) == (3, sum(LENGTHS))
    info = json.loads((tmp_path / 'ds' / 'meta' / 'info.json').read_text())
    assert info['codebase_version'] == 'v2.1' and info['fps'] == 10
    assert info['features']['observation.images.agentview'] == {
        'dtype': 'image', 'shape': [12, 10, 3], 'names': ['height', 'width', 'channel']}
    assert info['features']['observation.state']['names'][:2] == ['object_0', 'object_1']
    episodes = [json.loads(x) for x in
                (tmp_path / 'ds' / 'meta' / 'episodes.jsonl').read_text().splitlines()]
    assert [e['length'] for e in episodes] == list(LENGTHS)
    assert episodes[0]['tasks'] == ['lift the cube']
    stats = [json.loads(x) for x in
             (tmp_path / 'ds' / 'meta' / 'episodes_stats.jsonl').read_text().splitlines()]
    assert np.array(stats[0]['stats']['observation.images.agentview']['mean']).shape == (3, 1, 1)
    rows = store.read_range(0, store.count)
    index = 0
    for e, T in enumerate(LENGTHS):
        path = tmp_path / 'ds' / info['data_path'].format(episode_chunk=0, episode_index=e)
        table = pq.read_table(path)
        assert b'huggingface' in table.schema.metadata
        t = table.to_pydict()
        sl = slice(index, index + T)
        np.testing.assert_allclose(np.array(t['observation.state']), rows['obs/state'][sl])
        np.testing.assert_allclose(np.array(t['action']), rows['action'][sl])
        np.testing.assert_allclose(t['next.reward'], rows['reward'][sl])
        assert t['next.done'] == (rows['terminated'] | rows['truncated'])[sl].tolist()
        assert t['frame_index'] == list(range(T)) and t['episode_index'] == [e] * T
        assert t['index'] == list(range(index, index + T))
        np.testing.assert_allclose(t['timestamp'], np.arange(T) / 10, rtol=1e-6)
        for j, cell in enumerate(t['observation.images.agentview']):
            img = cv2.imdecode(np.frombuffer(cell['bytes'], np.uint8), cv2.IMREAD_COLOR)
            np.testing.assert_array_equal(img[..., ::-1], rows['obs/image_agentview'][index + j])
        index += T
