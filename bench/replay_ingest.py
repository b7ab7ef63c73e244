"""Sustained durable ingest into the replay store vs. an in-memory numpy ring buffer.

Drives the store as the replay node does: transitions of 4 robots (the node's schema for two
128x128 RGB cameras: obs and next_obs images, 4 image fields, next_obs equal to the next obs
except at episode ends) arrive as one dict per message; arrivals are appended in batches of
--batch, and whenever no commit is in flight a pipelined commit up to the last chunk boundary
starts (commit_async(boundary=True), fsync on); a transition counts once its commit returned
(when the node may acknowledge it). When 256 transitions wait for a commit, arrivals wait
too. ROS message decoding is not included. The baseline is a preallocated, warm numpy ring
buffer fed the same dicts, batch by batch (one copy per row).

Prints the figures, a codec survey on the same images, the disk's own sequential write rate,
and ends with one JSON line: transitions_per_s, memory_baseline_per_s, bytes_per_transition,
raw_bytes_per_transition (+ extras). Medians over repeats.

    .venv/bin/python bench/replay_ingest.py [--quick] [--images camera|render] [--no-dedup]
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
from collections import deque
from pathlib import Path

import _util  # noqa: F401  (puts the workspace's packages on sys.path)
import numpy as np
from numcodecs import Blosc

from realrl_replay import CodecConfig, ReplayWriter, StoreConfig, WriterConfig, pixel_delta
from realrl_replay.layout import delta_encode
from realrl_replay.synthetic import TransitionFactory
from realrl_replay.transition_schema import store_schema

ROBOTS = ('arm_0', 'arm_1', 'arm_2', 'arm_3')
DESCRIPTION = {'kind': 'arm7', 'control_hz': 20.0, 'state_dim': 14,
               'state_layout': {'joint_pos': [0, 7], 'joint_vel': [7, 14]}, 'action_dim': 7,
               'action_low': [-1.0] * 7, 'action_high': [1.0] * 7, 'action_units': 'rad/s',
               'cameras': ['front', 'wrist'], 'image_size': [128, 128],
               'episode_max_steps': 200, 'capabilities': []}


def node_schema() -> dict:
    """The replay node's fields for 4 arms with two 128x128 RGB cameras each."""
    return store_schema({r: {**DESCRIPTION, 'robot_id': r} for r in ROBOTS})[0]


def make_pool(factory: TransitionFactory, n: int) -> list[dict]:
    """N transitions as the node gets them (one dict per message), interleaved over robots in
    bursts of 1-8 (robots' messages arrive in no fixed order)."""
    rng = np.random.default_rng(0)
    per_robot = {r: factory.records(r, np.arange(n // len(ROBOTS))) for r in ROBOTS}
    at = {r: 0 for r in ROBOTS}
    pool = []
    while len(pool) < n:
        r = ROBOTS[rng.integers(len(ROBOTS))]
        k = int(rng.integers(1, 9))
        take = per_robot[r][at[r]:at[r] + k]
        at[r] += len(take)
        pool += take
        if all(at[x] >= len(per_robot[x]) for x in ROBOTS):
            break
    return pool


CODECS = {'delta-zstd': CodecConfig('zstd', 1, 'noshuffle', 'delta'),
          'delta-lz4-bitshuffle': CodecConfig('lz4', 1, 'bitshuffle', 'delta'),
          'pixel-lz4-bitshuffle': CodecConfig('lz4', 1, 'bitshuffle', 'pixel_delta'),
          'pixel-zstd-bitshuffle': CodecConfig('zstd', 1, 'bitshuffle', 'pixel_delta'),
          'lz4-bitshuffle': CodecConfig('lz4', 1, 'bitshuffle'),
          'zstd-bitshuffle': CodecConfig('zstd', 1, 'bitshuffle')}


def run_store(root: Path, schema: dict, pool: list[dict], seconds: float, batch: int,
              dedup: bool, codec: str, chunk_bytes: int = 2 << 20,
              max_pending: int = 256, writer_config: WriterConfig | None = None) -> dict:
    store_cfg = StoreConfig(dedup_next_obs=dedup, image_codec=CODECS[codec],
                            target_chunk_bytes=chunk_bytes)
    writer = ReplayWriter.create(root, schema, {'bench': 'ingest'}, store_cfg,
                                 writer_config or WriterConfig())
    seqs = {robot: 0 for robot in ROBOTS}
    waiting: deque = deque()            # (row end, time appended) of each batch
    latencies = []
    n, appended, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        if writer.pending >= max_pending:  # saturated: arrivals wait (in DDS, for the node)
            writer.wait()
        group = pool[n % len(pool):n % len(pool) + batch]
        n += len(group)
        for record in group:  # the node stamps each sender's next seq
            record['seq'] = seqs[record['robot_id']]
            seqs[record['robot_id']] += 1
        writer.append(group)
        appended += len(group)
        waiting.append((appended, time.perf_counter()))
        if not writer.committing:
            writer.commit_async(boundary=True)
        durable, now = writer.count, time.perf_counter()
        while waiting and waiting[0][0] <= durable:
            latencies.append(now - waiting.popleft()[1])
    durable = writer.count
    elapsed = time.perf_counter() - start
    writer.close()
    size = sum(p.stat().st_size for p in root.rglob('*') if p.is_file())
    return {'rate': durable / elapsed, 'bytes': size // max(1, writer.count),
            'p50_ms': 1e3 * float(np.median(latencies)),
            'p99_ms': 1e3 * float(np.percentile(latencies, 99))}


def run_memory(schema: dict, pool: list[dict], seconds: float, capacity: int,
               batch: int) -> float:
    """The baseline: a preallocated, warm (every page touched) numpy ring buffer fed the same
    dicts, batch by batch."""
    buf = {k: np.ones((capacity, *s[0]), s[1]) for k, s in schema.items()}
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        group = pool[n % len(pool):n % len(pool) + batch]
        at = n % capacity
        if at + len(group) > capacity:
            at = 0
        for name, column in buf.items():
            np.stack([r[name] for r in group], out=column[at:at + len(group)])
        n += len(group)
    return n / (time.perf_counter() - start)


def codec_survey(images: np.ndarray) -> dict:
    def blosc(cname, shuffle):
        codec = Blosc(cname=cname, clevel=1, shuffle={'noshuffle': 0, 'bitshuffle': 2}[shuffle])
        return codec.encode
    zstd, lz4 = blosc('zstd', 'noshuffle'), blosc('lz4', 'bitshuffle')
    zstd_bit = blosc('zstd', 'bitshuffle')
    out = {}
    for name, encode in (('pixel_delta+lz4-1/bitshuffle', lambda x: lz4(pixel_delta.encode(x))),
                         ('pixel_delta+zstd-1/bitshuffle',
                          lambda x: zstd_bit(pixel_delta.encode(x))),
                         ('lz4-1/bitshuffle', lz4),
                         ('zstd-1/bitshuffle', blosc('zstd', 'bitshuffle')),
                         ('delta+lz4-1/bitshuffle', lambda x: lz4(delta_encode(x))),
                         ('delta+zstd-1', lambda x: zstd(delta_encode(x)))):
        start = time.perf_counter()
        for _ in range(10):
            encoded = encode(images)
        seconds = (time.perf_counter() - start) / 10
        out[name] = {'ratio': round(images.nbytes / len(encoded), 2),
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


def file_create_us(folder: Path, n: int = 500) -> float:
    """CPU microseconds to create one empty file in ``folder`` (the store pre-creates a file
    per chunk; on ext4 without a journal this grows with recent deletions nearby)."""
    probe = folder / 'create_probe'
    probe.mkdir()
    start = time.process_time()
    for i in range(n):
        os.close(os.open(probe / f'c.{i}', os.O_WRONLY | os.O_CREAT, 0o644))
    spent = time.process_time() - start
    shutil.rmtree(probe)
    return 1e6 * spent / n


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='short run (seconds)')
    ap.add_argument('--images', choices=('camera', 'render'), default='camera',
                    help="'camera': render + sensor noise (std 1.5); 'render': noise-free")
    ap.add_argument('--dir', default=str(Path(__file__).resolve().parent.parent / 'runs'),
                    help="folder for the stores (default: the repository's runs/, where "
                         "realrl train keeps its stores)")
    ap.add_argument('--batch', type=int, default=32, help='transitions per append (default 32)')
    ap.add_argument('--codec', choices=sorted(CODECS), default='pixel-lz4-bitshuffle',
                    help="image codec (default: the store's default, pixel-lz4-bitshuffle)")
    ap.add_argument('--chunk-kib', type=int, default=2048,
                    help='uncompressed bytes per chunk, KiB (default: the store default, 2048)')
    ap.add_argument('--no-dedup', action='store_true',
                    help='store next_obs images explicitly (StoreConfig.dedup_next_obs=False)')
    ap.add_argument('--plain-view-s', type=float, default=None,
                    help='WriterConfig.plain_view_interval_s (default: its default)')
    args = ap.parse_args(argv)
    writer_cfg = (WriterConfig() if args.plain_view_s is None
                  else WriterConfig(plain_view_interval_s=args.plain_view_s))
    seconds, repeats = (3.0, 1) if args.quick else (10.0, 3)
    schema = node_schema()
    noise = 1.5 if args.images == 'camera' else 0.0
    factory = TransitionFactory(schema, noise=noise, episode_len=200)
    pool = make_pool(factory, 1024 if args.quick else 4096)
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix='bench_replay_ingest_', dir=args.dir))
    try:
        disk = disk_write_mb_s(work, 128 if args.quick else 512)
        survey = codec_survey(np.ascontiguousarray(factory.banks['obs/image_front'][:32]))
        runs, memory = [], []
        for r in range(repeats):
            # Stores are deleted only at the end: on this VM's ext4 (no journal) creating a
            # file skips every inode deleted in the last 1-6 minutes, so deleting a store
            # just before the next repeat would slow that repeat's chunk files down.
            runs.append(run_store(work / f'store{r}', schema, pool, seconds, args.batch,
                                  not args.no_dedup, args.codec, args.chunk_kib << 10,
                                  writer_config=writer_cfg))
            memory.append(run_memory(schema, pool, seconds, 4096, args.batch))
        create_us = file_create_us(work)  # last: its own deletions would slow later creates
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raw = sum(int(np.prod(s[0])) * np.dtype(s[1]).itemsize for s in schema.values()) + 2 + 8
    rates = [x['rate'] for x in runs]
    result = {
        'transitions_per_s': round(statistics.median(rates)),
        'memory_baseline_per_s': round(statistics.median(memory)),
        'bytes_per_transition': int(statistics.median(x['bytes'] for x in runs)),
        'raw_bytes_per_transition': raw,
        'ack_latency_p50_ms': round(statistics.median(x['p50_ms'] for x in runs), 1),
        'ack_latency_p99_ms': round(statistics.median(x['p99_ms'] for x in runs), 1),
        'schema': 'replay node, 2 cameras 128x128 (obs + next_obs images)',
        'dedup_next_obs': not args.no_dedup, 'image_codec': args.codec, 'images': args.images,
        'append_batch': args.batch, 'cpus': os.cpu_count(),
        'load_avg_1m': round(os.getloadavg()[0], 2),
        'fsync': True, 'disk_seq_write_mb_s': round(disk), 'repeats': repeats,
        'file_create_cpu_us': round(create_us), 'store_dir': str(work),
        'seconds_each': seconds, 'codec_survey': survey,
        'plain_view_interval_s': writer_cfg.plain_view_interval_s,
    }
    print(f'node schema (2 cameras, obs+next_obs), images={args.images} (noise std {noise}), '
          f'codec {args.codec}, dedup_next_obs={not args.no_dedup}, appends of {args.batch}, '
          f'pipelined boundary commits, fsync on; {os.cpu_count()} cpus, load average '
          f'{os.getloadavg()[0]:.2f} at the end')
    print(f'codec survey on 32 frames (one chunk): {json.dumps(survey)}')
    print(f'disk sequential write+fdatasync: {disk:.0f} MB/s; creating a file: {create_us:.0f} us '
          f'of CPU in {work.parent}')
    print(f'store: {result["transitions_per_s"]} durable transitions/s (runs: '
          f'{[round(r) for r in rates]}), {result["bytes_per_transition"]} B/transition on disk '
          f'(raw {raw} B), ack latency p50 {result["ack_latency_p50_ms"]} ms, p99 '
          f'{result["ack_latency_p99_ms"]} ms')
    print(f'memory ring buffer baseline: {result["memory_baseline_per_s"]} transitions/s')
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    sys.exit(main() and 0)
