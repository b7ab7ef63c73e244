"""Store creation makes everything durable before the identity file that makes the folder a
store, checked by tracing the fsync/fdatasync and rename calls (not by timing)."""
import os

from _replay_fixtures import SMALL, small_schema
from fsync_trace import SyncTrace

from realrl_replay import ReplayWriter, WriterConfig


def test_store_creation_syncs_every_folder_and_metadata_file_before_the_identity(
        tmp_path, monkeypatch):
    root = tmp_path / 'runs' / 'store'
    (tmp_path / 'runs').mkdir()
    trace = SyncTrace(monkeypatch)
    ReplayWriter.create(root, small_schema(True), {'task': 'test'}, SMALL,
                        WriterConfig(fsync=True, plain_view_interval_s=3600)).close()
    identity = trace.renamed_to(root / 'realrl_replay.json')
    created = trace.events[:identity]
    assert trace.synced_between(str(root / 'realrl_replay.json') + '.partial', -1, identity)
    folders, files = [], []
    for folder, _, names in os.walk(root / 'data'):
        folders.append(folder)  # data/, data/obs/, data/obs/image_0/, ...
        files += [os.path.join(folder, n) for n in names if n == 'zarr.json']
    assert len(folders) > 10 and len(files) == len(folders)
    unsynced = [p for p in folders + files + [str(root / 'commit.0'), str(root / 'commit.1'),
                                              str(root)]
                if not trace.synced_between(p, -1, identity)]
    assert unsynced == [], f'not synced before the identity file: {unsynced}\n{created}'
    # a folder after every rename into it (the metadata files are replaced by rename)
    for i, event in enumerate(trace.events[:identity]):
        if event[0] == 'rename':
            parent = os.path.dirname(event[2])
            assert trace.synced_between(parent, i, identity), (event, created)
    # then the identity file's name, and the store's own name in its parent
    assert trace.synced_between(root, identity) and trace.synced_between(root.parent, identity)
