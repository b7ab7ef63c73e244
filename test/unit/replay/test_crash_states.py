"""Crash states beyond SIGKILL: the file-system model, the real writer, planted ordering bugs
(a marker synced before its data, a new shard whose folder is never synced)."""
import os
import random

import realrl_replay.writer as writer_module
from realrl_replay.crash_states import check_trace, trace_ingest
from realrl_replay.fs_trace import SECTOR, CrashStates, Recorder


def test_states_keep_synced_data_and_vary_the_rest(tmp_path):
    root = tmp_path / 'r'
    root.mkdir()
    (root / 'old').write_bytes(b'o' * 2000)
    with Recorder(root) as rec:
        fd = os.open(root / 'new', os.O_WRONLY | os.O_CREAT, 0o644)
        os.pwrite(fd, b'a' * 1000, 0)
        os.fdatasync(fd)
        os.pwrite(fd, b'b' * 1100, 1000)   # unsynced, 3 sectors
        os.close(fd)
        fd = os.open(root / 'old', os.O_WRONLY)
        os.pwrite(fd, b'n' * 2000, 0)      # unsynced overwrite of a durable file
        os.close(fd)
    states = CrashStates(rec.snapshot, rec.ops)
    states.advance(len(rec.ops))
    seen = list(states.sample(200, random.Random(0)))
    news = [s.files.get('new') for s in seen]
    news = [None if n is None else bytes(n) for n in news]
    assert None in news   # its creation was never made durable by a folder fsync
    present = [n for n in news if n is not None]
    assert all(n[:1000] == b'a' * 1000 for n in present)   # synced before the crash
    tails = {n[1000:] for n in present}
    assert b'' in tails and b'b' * 1100 in tails
    assert any(0 < len(t) < 1100 or (t and b'\0' in t) for t in tails)  # torn at sectors
    olds = {bytes(s.files['old']) for s in seen}
    assert b'o' * 2000 in olds and b'n' * 2000 in olds
    mixed = [o for o in olds if b'o' in o and b'n' in o]
    assert mixed and all(o.index(b'n') % SECTOR == 0 or o.index(b'o') % SECTOR == 0
                         for o in mixed)


def test_folder_sync_makes_a_creation_durable(tmp_path):
    root = tmp_path / 'r'
    root.mkdir()
    with Recorder(root) as rec:
        fd = os.open(root / 'f', os.O_WRONLY | os.O_CREAT, 0o644)
        os.pwrite(fd, b'x' * 10, 0)
        os.fdatasync(fd)
        os.close(fd)
        dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
    states = CrashStates(rec.snapshot, rec.ops)
    states.advance(len(rec.ops))
    assert [s.files for s in states.sample(50, random.Random(0))] == [{'f': bytearray(b'x' * 10)}]


def test_real_writer_survives_every_sampled_crash_state(tmp_path):
    trace = trace_ingest(tmp_path / 'w', commits=12, seed=3)
    assert trace.commits == 12 and len(trace.expected) > 40
    report = check_trace(trace, tmp_path / 'c', states_per_point=3, seed=3)
    assert report.states > 100 and report.points > 60
    assert report.bad == 0, report.examples


def test_checker_finds_a_marker_written_before_its_data_is_synced(tmp_path):
    trace = trace_ingest(tmp_path / 'w', commits=12, seed=3, planted=True)
    report = check_trace(trace, tmp_path / 'c', states_per_point=3, seed=3)
    assert report.bad > 0
    assert set(report.kinds) <= {'unopenable', 'torn', 'lost', 'stuck'}


def test_checker_finds_a_new_shard_whose_folder_is_not_synced(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_module, 'fsync_dir', lambda path: None)
    trace = trace_ingest(tmp_path / 'w', commits=12, seed=3)
    report = check_trace(trace, tmp_path / 'c', states_per_point=3, seed=3)
    assert report.bad > 0 and 'unopenable' in report.kinds, report.kinds
