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
(validation, scan, repair, lock) and ReplayReader open + refresh. Ends with one JSON line:
kills, lost, duplicated, torn, reopen_1m_s (median).

    PYTHONPATH=src/realrl_replay python bench/replay_crash.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from realrl_replay import ReplayReader, ReplayWriter, StoreConfig, WriterConfig, crash_harness
from realrl_replay.layout import ChunkCodec, CommitMarker, MarkerSlots, chunk_name, field_dir
from realrl_replay.shards import ShardWriter
from realrl_replay.synthetic import example_schema


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


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='short run (seconds)')
    ap.add_argument('--dir', default=None, help='folder for the stores (default: a temp dir)')
    args = ap.parse_args(argv)
    kills, rows = (10, 100_000) if args.quick else (60, 1_000_000)
    work = Path(tempfile.mkdtemp(prefix='replay_crash_', dir=args.dir))
    try:
        start = time.perf_counter()
        report = torture(work / 'torture', kills)
        torture_s = time.perf_counter() - start
        shutil.rmtree(work / 'torture')
        start = time.perf_counter()
        lay_out(work / 'big', rows)
        layout_s = time.perf_counter() - start
        writer_s, reader_s = time_reopen(work / 'big', 3)
        files = sum(1 for _ in (work / 'big').rglob('c.*'))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lost_unpersisted = report.sent - sum(v + 1 for v in report.acked.values())
    result = {
        'kills': report.kills, 'lost': report.lost, 'duplicated': report.duplicated,
        'torn': report.torn, 'reopen_1m_s': round(statistics.median(writer_s), 3),
        'reopen_rows': rows, 'reader_open_s': round(statistics.median(reader_s), 3),
        'reopen_first_s': round(writer_s[0], 3), 'shard_files': files,
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
    print(f'reopen of {rows} transitions ({files} shard files, laid out in {layout_s:.1f} s): '
          f'writer {[round(s, 3) for s in writer_s]} s, reader {[round(s, 3) for s in reader_s]}'
          ' s')
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    sys.exit(main() and 0)
