"""Sustained durable ingest into the replay store vs. an in-memory numpy ring buffer.

Simulates the replay node: transitions (two 128x128 RGB images each) from 4 robots arrive as
dicts; every 32 (--group) the node appends them and commits (fsync) before acknowledging. Prints the
figures, a codec survey on the same images, the disk's own sequential write rate, and ends with
one JSON line: transitions_per_s, memory_baseline_per_s, bytes_per_transition,
raw_bytes_per_transition (+ extras). Medians over repeats.

    PYTHONPATH=src/realrl_replay python bench/replay_ingest.py [--quick] [--images camera|render]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numcodecs import Blosc

from realrl_replay import ReplayWriter, WriterConfig
from realrl_replay.synthetic import TransitionFactory, example_schema

ROBOTS = ('arm_0', 'arm_1', 'arm_2', 'arm_3')


def make_pool(factory: TransitionFactory, n: int) -> list[dict]:
    """n transitions as the node gets them (one dict per message), round-robin over robots."""
    records = []
    for i, robot in enumerate(ROBOTS):
        records += factory.records(robot, np.arange(n // len(ROBOTS)) + i)
    return records


def run_store(root: Path, schema: dict, pool: list[dict], seconds: float,
              group_size: int) -> tuple[float, int]:
    writer = ReplayWriter.create(root, schema, {'bench': 'ingest'}, config=WriterConfig())
    seqs = {robot: 0 for robot in ROBOTS}
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        group = pool[n % len(pool):n % len(pool) + group_size]
        for record in group:  # the node stamps each sender's next seq
            record['seq'] = seqs[record['robot_id']]
            seqs[record['robot_id']] += 1
        writer.append(group)
        writer.commit()
        n += len(group)
    rate = n / (time.perf_counter() - start)
    writer.close()
    size = sum(p.stat().st_size for p in root.rglob('*') if p.is_file())
    return rate, size // max(1, writer.count)


def run_memory(schema: dict, pool: list[dict], seconds: float, capacity: int,
               group_size: int) -> float:
    """The baseline: a numpy ring buffer (preallocated) fed the same dicts, 32 at a time."""
    buf = {k: np.zeros((capacity, *s[0]), s[1]) for k, s in schema.items()}
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        group = pool[n % len(pool):n % len(pool) + group_size]
        at = np.arange(n, n + len(group)) % capacity
        for name, column in buf.items():
            column[at] = np.stack([r[name] for r in group])
        n += len(group)
    return n / (time.perf_counter() - start)


def codec_survey(images: np.ndarray) -> dict:
    out = {}
    for cname, shuffle in (('lz4', 'noshuffle'), ('lz4', 'bitshuffle'), ('zstd', 'noshuffle'),
                           ('zstd', 'bitshuffle')):
        codec = Blosc(cname=cname, clevel=1,
                      shuffle={'noshuffle': 0, 'bitshuffle': 2}[shuffle])
        start = time.perf_counter()
        for _ in range(10):
            encoded = codec.encode(images)
        seconds = (time.perf_counter() - start) / 10
        out[f'{cname}-1/{shuffle}'] = {'ratio': round(images.nbytes / len(encoded), 2),
                                       'encode_mb_s': round(images.nbytes / seconds / 1e6)}
    return out


def disk_write_mb_s(folder: Path, mb: int) -> float:
    data = os.urandom(4 << 20)
    path = folder / 'disk_probe.bin'
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    start = time.perf_counter()
    for _ in range(mb // 4):
        os.write(fd, data)
    os.fdatasync(fd)
    seconds = time.perf_counter() - start
    os.close(fd)
    path.unlink()
    return mb / seconds


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='short run (seconds)')
    ap.add_argument('--images', choices=('camera', 'render'), default='camera',
                    help="'camera': render + sensor noise (std 1.5); 'render': noise-free")
    ap.add_argument('--dir', default=None, help='folder for the store (default: a temp dir)')
    ap.add_argument('--group', type=int, default=32, help='transitions per commit (default 32)')
    args = ap.parse_args(argv)
    seconds, repeats = (2.0, 1) if args.quick else (10.0, 3)
    schema = example_schema()
    noise = 1.5 if args.images == 'camera' else 0.0
    factory = TransitionFactory(schema, noise=noise)
    pool = make_pool(factory, 512 if args.quick else 2048)
    work = Path(tempfile.mkdtemp(prefix='replay_ingest_', dir=args.dir))
    try:
        disk = disk_write_mb_s(work, 128 if args.quick else 512)
        survey = codec_survey(factory.banks['obs/image_0'][:16])
        rates, sizes, memory = [], [], []
        for r in range(repeats):
            rate, size = run_store(work / f'store{r}', schema, pool, seconds, args.group)
            shutil.rmtree(work / f'store{r}')
            rates.append(rate)
            sizes.append(size)
            memory.append(run_memory(schema, pool, seconds, 20_000, args.group))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raw = sum(int(np.prod(s[0])) * np.dtype(s[1]).itemsize for s in schema.values()) + 2 + 8
    result = {
        'transitions_per_s': round(statistics.median(rates)),
        'memory_baseline_per_s': round(statistics.median(memory)),
        'bytes_per_transition': int(statistics.median(sizes)),
        'raw_bytes_per_transition': raw,
        'images': args.images, 'commit_every': args.group, 'fsync': True,
        'disk_seq_write_mb_s': round(disk), 'repeats': repeats, 'seconds_each': seconds,
        'codec_survey': survey,
    }
    print(f'images={args.images} (noise std {noise}), commit every {args.group}, fsync on')
    print(f'codec survey on 16 frames: {json.dumps(survey)}')
    print(f'disk sequential write+fdatasync: {disk:.0f} MB/s')
    print(f'store: {result["transitions_per_s"]} transitions/s (runs: '
          f'{[round(r) for r in rates]}), {result["bytes_per_transition"]} B/transition on disk '
          f'(raw {raw} B)')
    print(f'memory ring buffer baseline: {result["memory_baseline_per_s"]} transitions/s')
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    sys.exit(main() and 0)
