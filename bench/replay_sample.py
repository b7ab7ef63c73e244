"""Sampling batches from the store through the bounded cache vs. an in-memory numpy buffer.

Builds a store of transitions with two 128x128 RGB images each, then for several cache sizes
(fraction of the store's raw bytes) runs a learner loop for a fixed time: sample a batch of 256
(dict of numpy arrays), optionally followed by a simulated update step. The baseline holds the
whole store in numpy arrays and samples uniform indices. Prints the figures and ends with one
JSON line: p50_ms, throughput_ratio_vs_memory (cache 25%), curve (cache fraction -> ratio).

    PYTHONPATH=src/realrl_replay python bench/replay_sample.py [--quick]
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

from realrl_replay import ReplayReader, ReplayWriter, Sampler, SamplerConfig, WriterConfig
from realrl_replay.synthetic import TransitionFactory, example_schema

BATCH = 256


def build_store(root: Path, rows: int) -> None:
    schema = example_schema()
    factory = TransitionFactory(schema, noise=1.5)
    with ReplayWriter.create(root, schema, {'bench': 'sample'},
                             config=WriterConfig(fsync=False)) as writer:
        for start in range(0, rows, 512):
            robot = f'arm_{start // 512 % 4}'
            writer.append(factory.make(robot, np.arange(start, min(rows, start + 512))))
            writer.commit()


def step_work(batch: dict, update_ms: float) -> None:
    """A stand-in for the learner's update: touch the images, then compute for update_ms."""
    for key, value in batch.items():
        if value.dtype == np.uint8:
            value.mean()
    if update_ms:
        end = time.perf_counter() + update_ms / 1e3
        while time.perf_counter() < end:
            time.sleep(update_ms / 4e3)  # an update step releases the GIL (torch kernels)


def run_loop(sample, seconds: float, update_ms: float) -> tuple[float, list[float]]:
    latencies = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        batch = sample()
        latencies.append(time.perf_counter() - t)
        step_work(batch, update_ms)
    return len(latencies) / (time.perf_counter() - start), latencies


def memory_sampler(reader: ReplayReader, seed: int):
    data = reader.read_range(0, reader.count)
    rng = np.random.default_rng(seed)
    n = reader.count

    def sample():
        idx = rng.integers(0, n, BATCH)
        return {k: v[idx] for k, v in data.items()}
    return sample


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='short run (seconds)')
    ap.add_argument('--dir', default=None, help='folder for the store (default: a temp dir)')
    ap.add_argument('--update-ms', type=float, default=0.0,
                    help='simulated learner update per batch (default 0: sampling only)')
    args = ap.parse_args(argv)
    rows, seconds, repeats = (4096, 1.5, 1) if args.quick else (16384, 5.0, 3)
    fractions = (0.1, 0.25, 0.5, 1.0)
    work = Path(tempfile.mkdtemp(prefix='replay_sample_', dir=args.dir))
    try:
        build_store(work / 'store', rows)
        reader = ReplayReader(work / 'store')
        store_raw = reader.count * reader.schema.row_bytes
        memory = memory_sampler(reader, 0)
        curve, p50s, loads = {}, {}, {}
        base_rates = []
        for frac in fractions:
            ratios, lat, load_rates = [], [], []
            for rep in range(repeats):
                base_rate, _ = run_loop(memory, seconds, args.update_ms)
                base_rates.append(base_rate)
                config = SamplerConfig(batch_size=BATCH, cache_bytes=int(frac * store_raw) + 1,
                                       seed=rep)
                with Sampler(work / 'store', config) as sampler:
                    sampler.fill()
                    loads0 = sampler.stats['loads']
                    rate, latencies = run_loop(sampler.sample, seconds, args.update_ms)
                    load_rates.append((sampler.stats['loads'] - loads0) / seconds)
                ratios.append(rate / base_rate)
                lat += latencies
            curve[frac] = round(statistics.median(ratios), 3)
            p50s[frac] = round(1e3 * statistics.median(lat), 2)
            loads[frac] = round(statistics.median(load_rates), 1)
            print(f'cache {frac:>4.0%}: throughput ratio {curve[frac]:.3f}, sample p50 '
                  f'{p50s[frac]:.2f} ms, p99 {1e3 * np.percentile(lat, 99):.2f} ms, '
                  f'blocks loaded {loads[frac]}/s')
        base = statistics.median(base_rates)
        _, base_lat = run_loop(memory, seconds, args.update_ms)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        'p50_ms': p50s[0.25],
        'throughput_ratio_vs_memory': curve[0.25],
        'curve': {str(k): v for k, v in curve.items()},
        'memory_batches_per_s': round(base, 1),
        'memory_p50_ms': round(1e3 * statistics.median(base_lat), 2),
        'block_loads_per_s': {str(k): v for k, v in loads.items()},
        'store_rows': rows, 'batch': BATCH, 'update_ms': args.update_ms,
        'repeats': repeats, 'seconds_each': seconds,
    }
    print(f'memory baseline: {base:.1f} batches/s, p50 {result["memory_p50_ms"]} ms '
          f'({rows} rows, {store_raw / 2**30:.2f} GiB in RAM)')
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    sys.exit(main() and 0)
