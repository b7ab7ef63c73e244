"""SIGKILL torture of the replay writer, and reopen time of a 1,000,000-transition store.

Part 1: robots (the parent) send transitions with two 128x128 RGB cameras (obs and next_obs
images, next_obs linked) to a writer process (the replay node: append, pipelined commits up to
chunk boundaries, fsync, acknowledge once a commit returned) that is SIGKILLed at random
moments and restarted; senders re-send what was not acknowledged. A reader process checks rows
all along. Counts acknowledged-but-lost, duplicated and torn transitions. Baseline: an
in-memory numpy buffer keeps nothing over a crash (every un-persisted transition is lost).

Part 2: lays out a store of 1,000,000 transitions with two (obs) images (shard files written
directly with the store's own encoder and ShardWriter; images constant so the disk stays
small) plus, as a crash would leave them, a chunk beyond the commit in every field (in the
last shard, or in a shard of its own) and a '.partial', then times ReplayWriter.open
(validation, scan, repair, lock) and ReplayReader open + refresh.

Part 3, cold opens: the open that repairs a store after a crash is timed on identical
copies, with the store's files in the page cache (warm) or dropped (cold), three times each in
alternating order (medians), for the 1,000,000-row store of part 2 and for a store whose
writer (node schema, fsync on) was really SIGKILLed while writing. The drop is per file
(fsync, then posix_fadvise(POSIX_FADV_DONTNEED) on every file of the store; the output says
so and shows the bytes still resident after it, via mincore), so the other processes on the
machine keep their cache; it leaves the kernel's dentry and inode caches warm. The repairing
open reads little (markers, the last shard's index, directory listings), so cold and warm
differ less than the load on a shared machine varies. ``--drop-caches all``
writes 3 to /proc/sys/vm/drop_caches instead (root; the whole machine, dentries and inodes
too). A repaired store's cold reopen is timed too.

Ends with one JSON line: kills, lost, duplicated, torn, reopen_1m_s (median of warm opens,
the first repairs), cold_repair_open_1m_s, warm_repair_open_1m_s, cold_reopen_1m_s,
killed_cold_open_s, killed_warm_open_s.

    PYTHONPATH=src/realrl_replay python bench/replay_crash.py [--quick] [--drop-caches all]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _pagecache
import numpy as np

from realrl_replay import ReplayReader, ReplayWriter, StoreConfig, WriterConfig, crash_harness
from realrl_replay.layout import ChunkCodec, CommitMarker, MarkerSlots, chunk_name, field_dir
from realrl_replay.shards import ShardWriter
from realrl_replay.synthetic import TransitionFactory, example_schema


def torture(root: Path, kills: int) -> crash_harness.CrashReport:
    return crash_harness.run(root, kills=kills, robots=4, image_hw=(128, 128), group=32,
                             fsync=True, kill_after_s=(0.1, 0.8), chunk_bytes=1 << 20,
                             in_flight=256, seed=11)


def lay_out(root: Path, rows: int) -> None:
    """A store of ``rows`` committed transitions, as the writer would leave it after a crash."""
    writer = ReplayWriter.create(root, example_schema(), {'bench': 'reopen'}, StoreConfig(),
                                 WriterConfig(fsync=False))
    info = writer.info
    writer.close(commit=False)
    tails = {}
    for spec in info.schema.fields:
        codec = ChunkCodec(spec)
        data = codec.encode(np.zeros(codec.shape, spec.dtype))
        folder = field_dir(root, spec)
        complete = rows // spec.chunk_rows
        shard = None
        for k in range(complete + 1):  # chunk `complete`: a commit that wrote no marker
            j, i = divmod(k, spec.shard_chunks)
            if shard is None or i == 0:
                if shard is not None:
                    shard.flush(fsync=False)
                    shard.close()
                shard = ShardWriter(folder / chunk_name(spec, j), spec.shard_chunks)
            shard.append(i, data)
        shard.flush(fsync=False)
        shard.close()
        tails[spec.name] = np.zeros((rows % spec.chunk_rows, *spec.shape), spec.dtype)
    (field_dir(root, info.schema.fields[0]) / 'c.9.0.partial').write_bytes(b'x')
    slots = MarkerSlots(root)
    slots.write(CommitMarker(info.identity.uuid, 1, rows, ('arm_0',), (rows - 1,), tails),
                info.schema, fsync=True)
    slots.close()


def time_reopen(root: Path, repeats: int) -> tuple[list[float], list[float]]:
    writer_s, reader_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        writer = ReplayWriter.open(root)
        writer_s.append(time.perf_counter() - start)
        writer.close()
        start = time.perf_counter()
        ReplayReader(root).refresh()
        reader_s.append(time.perf_counter() - start)
    return writer_s, reader_s


def _killed_writer(root: Path) -> None:
    """Child: the replay node's writer (2 cameras, obs + next_obs, fsync) writing flat out."""
    schema = example_schema(next_images=True)
    factory = TransitionFactory(schema, noise=1.5)
    writer = ReplayWriter.open(root, WriterConfig(fsync=True))
    seq = 0
    while True:
        for k, robot in enumerate(('arm_0', 'arm_1', 'arm_2', 'arm_3')):
            writer.append(factory.make(robot, np.arange(seq, seq + 8)))
        seq += 8
        if not writer.committing:
            writer.commit_async(boundary=True)


def killed_store(root: Path, rows: int, timeout_s: float = 120.0) -> int:
    """A store whose writer was SIGKILLed, while writing, once it held about ``rows``."""
    ReplayWriter.create(root, example_schema(next_images=True), {'bench': 'killed'},
                        StoreConfig(), WriterConfig(fsync=True)).close()
    proc = mp.get_context('fork').Process(target=_killed_writer, args=(root,), daemon=True)
    proc.start()
    reader = ReplayReader(root)
    deadline = time.monotonic() + timeout_s
    while reader.refresh() < rows and time.monotonic() < deadline and proc.is_alive():
        time.sleep(0.05)
    proc.kill()  # SIGKILL, in the middle of appends and commits
    proc.join()
    return reader.refresh()


def drop(root: Path, how: str) -> int:
    """Drop the store's files from the page cache; returns the bytes still resident."""
    if how == 'all':
        _pagecache.drop_all()
    else:
        _pagecache.drop(root)
    return _pagecache.resident_bytes(root)


def timed_open(root: Path) -> float:
    start = time.perf_counter()
    ReplayWriter.open(root).close()
    return time.perf_counter() - start


def cold_and_warm(make, work: Path, name: str, how: str, repeats: int = 3) -> dict:
    """The repairing open of identical crashed stores (``make(path)`` makes one), cold
    (page cache dropped) and warm (every file read first), ``repeats`` times each in
    alternating order; the last warm store stays at work/name."""
    cold, warm, resident, size = [], [], 0, 0
    for i in range(repeats):
        cold_root, warm_root = work / f'{name}_cold{i}', work / name
        if warm_root.exists():
            shutil.rmtree(warm_root)
        make(cold_root)
        make(warm_root)
        resident = max(resident, drop(cold_root, how))
        size = _pagecache.warm(warm_root)
        for which in ((cold_root, warm_root) if i % 2 == 0 else (warm_root, cold_root)):
            (cold if which == cold_root else warm).append(timed_open(which))
        shutil.rmtree(cold_root)
    return {'cold_s': statistics.median(cold), 'warm_s': statistics.median(warm),
            'cold_all_s': cold, 'warm_all_s': warm, 'resident_after_drop': resident,
            'store_bytes': size}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='short run (seconds)')
    ap.add_argument('--dir', default=None, help='folder for the stores (default: a temp dir)')
    ap.add_argument('--drop-caches', choices=('files', 'all'), default='files',
                    help="cold opens: 'files' (default) drops the store's files from the page "
                         "cache one by one (fsync + fadvise DONTNEED); 'all' writes 3 to "
                         '/proc/sys/vm/drop_caches (root; whole machine, dentries and inodes too)')
    args = ap.parse_args(argv)
    kills, rows, killed_rows = (10, 100_000, 2_000) if args.quick else (60, 1_000_000, 5_000)
    work = Path(tempfile.mkdtemp(prefix='replay_crash_', dir=args.dir))
    try:
        start = time.perf_counter()
        report = torture(work / 'torture', kills)
        torture_s = time.perf_counter() - start
        shutil.rmtree(work / 'torture')
        killed = killed_store(work / 'killed', killed_rows)  # never opened: copied
        kill_open = cold_and_warm(lambda path: shutil.copytree(work / 'killed', path), work,
                                  'killed_copy', args.drop_caches)
        shutil.rmtree(work / 'killed')
        shutil.rmtree(work / 'killed_copy')
        start = time.perf_counter()
        big_open = cold_and_warm(lambda path: lay_out(path, rows), work, 'big', args.drop_caches)
        layout_s = time.perf_counter() - start
        writer_s, reader_s = time_reopen(work / 'big', 3)
        writer_s.insert(0, big_open['warm_s'])  # the first warm open, the one that repaired
        reopen_resident = drop(work / 'big', args.drop_caches)
        cold_reopen_s = timed_open(work / 'big')
        files = sum(1 for _ in (work / 'big').rglob('c.*'))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lost_unpersisted = report.sent - sum(v + 1 for v in report.acked.values())
    result = {
        'kills': report.kills, 'lost': report.lost, 'duplicated': report.duplicated,
        'torn': report.torn, 'reopen_1m_s': round(statistics.median(writer_s), 3),
        'reopen_rows': rows, 'reader_open_s': round(statistics.median(reader_s), 3),
        'reopen_first_s': round(writer_s[0], 3), 'shard_files': files,
        'cold_repair_open_1m_s': round(big_open['cold_s'], 3),
        'warm_repair_open_1m_s': round(big_open['warm_s'], 3),
        'cold_reopen_1m_s': round(cold_reopen_s, 3),
        'killed_rows': killed, 'killed_store_mb': round(kill_open['store_bytes'] / 1e6, 1),
        'killed_cold_open_s': round(kill_open['cold_s'], 3),
        'killed_warm_open_s': round(kill_open['warm_s'], 3),
        'cold_open_runs_s': {'1m': [round(x, 3) for x in big_open['cold_all_s']],
                             'killed': [round(x, 3) for x in kill_open['cold_all_s']]},
        'warm_open_runs_s': {'1m': [round(x, 3) for x in big_open['warm_all_s']],
                             'killed': [round(x, 3) for x in kill_open['warm_all_s']]},
        'page_cache_drop': ('per file: fsync + posix_fadvise(DONTNEED)'
                            if args.drop_caches == 'files' else '/proc/sys/vm/drop_caches = 3'),
        'resident_after_drop_bytes': max(kill_open['resident_after_drop'],
                                         big_open['resident_after_drop'], reopen_resident),
        'transitions_sent': report.sent, 'out_of_order': report.out_of_order,
        'reader_rows_checked': report.reader_checks,
        'recovery_p50_ms': round(1e3 * statistics.median(report.recoveries_s), 1),
        'memory_baseline': 'an in-memory buffer loses every transition it holds at each crash',
    }
    print(f'{report.kills} SIGKILLs in {torture_s:.1f} s: {report.sent} transitions sent, '
          f'{report.count} stored; lost {report.lost}, duplicated {report.duplicated}, torn '
          f'{report.torn}, out of order {report.out_of_order}; reader checked '
          f'{report.reader_checks} rows; recovery p50 {result["recovery_p50_ms"]} ms')
    print(f'baseline (in-memory numpy buffer): a crash loses everything it held; the senders '
          f'would have had to keep {report.sent} transitions ({lost_unpersisted} unacked at end)')
    print(f'reopen of {rows} transitions ({files} shard files; 6 such stores laid out and '
          f'opened in {layout_s:.1f} s): '
          f'writer {[round(s, 3) for s in writer_s]} s, reader {[round(s, 3) for s in reader_s]}'
          ' s (the first repairs; files warm)')
    print(f'cold opens, page cache dropped {result["page_cache_drop"]} (bytes still resident '
          f'after the drops: {result["resident_after_drop_bytes"]}):')
    print(f'  {rows} rows as a crash leaves them: repairing open cold {big_open["cold_s"]:.3f} s '
          f'vs warm {big_open["warm_s"]:.3f} s (medians of 3, each on an identical copy); '
          f'repaired store reopened '
          f'cold {cold_reopen_s:.3f} s')
    print(f'  writer SIGKILLed at {killed} rows ({result["killed_store_mb"]} MB): repairing open '
          f'cold {kill_open["cold_s"]:.3f} s vs warm {kill_open["warm_s"]:.3f} s (medians of 3, '
          f'each on an identical copy)')
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    sys.exit(main() and 0)
