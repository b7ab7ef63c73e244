"""Sampling batches from the store through the bounded cache vs. an in-memory numpy buffer.

Throughput: builds a store of transitions with two 128x128 RGB images each (drawn tabletop
frames plus sensor noise), then for several cache sizes (fraction of the store's raw bytes)
runs a learner loop for a fixed time: sample a batch of 256 (dict of numpy arrays),
optionally followed by a simulated update step. The baseline holds the whole store in numpy
arrays and samples uniform indices. A batch draws only from rows that are cached, so this
figure alone says nothing about which rows a learner sees; the next two do.

Coverage: the share of the store's rows drawn at least once after K batches (K = 1, 2 and 4
times rows/batch, drawn back to back: the slowest rotation per batch), through the 25 % cache
vs. uniform indices in memory; ``coverage_ratio`` is the ratio at K = 2 rows/batch
(uniform sampling then covers 1 - e^-2 = 86 % in expectation).

Learning parity (bench/_learning_parity.py): the same SAC run (learner's Trainer, same
config and seeds) on the simulated reach arm, once sampling a durable store through the
learner's Sampler with a cache of 25 % of the final store, once from everything in memory.
``learning_parity`` = the store runs' final success rate / the memory runs' (deterministic
evaluation on the same 20 episodes, mean over seeds); ``return_parity`` = the median over
seeds of (final - initial return) in the store run / the same in the memory run. What it
leaves out is in that module's docstring (a state task; robot and learner take turns).

Ends with one JSON line: p50_ms, throughput_ratio_vs_memory (cache 25%), curve (cache
fraction -> ratio), coverage_ratio, learning_parity, return_parity (+ extras).

    .venv/bin/python bench/replay_sample.py [--quick] [--no-learning] [--seeds 0 1 2]
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

import _util  # noqa: F401  (puts the workspace's packages on sys.path)
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


def coverage(sample_indices, rows: int, ks: list[int]) -> dict[int, float]:
    """Share of ``rows`` drawn at least once after each of ``ks`` batches."""
    seen = np.zeros(rows, bool)
    out, done = {}, 0
    for k in sorted(ks):
        for _ in range(k - done):
            seen[sample_indices()] = True
        done = k
        out[k] = float(seen.mean())
    return out


def coverage_figures(store: Path, store_raw: int, rows: int, seed: int) -> dict:
    """Coverage after K batches: 25 % cache vs. uniform in memory."""
    epoch = rows // BATCH
    ks = [epoch, 2 * epoch, 4 * epoch]
    config = SamplerConfig(batch_size=BATCH, cache_bytes=int(0.25 * store_raw) + 1, seed=seed)
    with Sampler(store, config) as sampler:
        sampler.fill()
        cached = coverage(lambda: sampler.sample()['index'], rows, ks)
    rng = np.random.default_rng(seed)
    memory = coverage(lambda: rng.integers(0, rows, BATCH), rows, ks)
    return {'k_batches': ks, 'cache_25': [round(cached[k], 3) for k in ks],
            'memory_uniform': [round(memory[k], 3) for k in ks],
            'coverage_ratio': round(cached[ks[1]] / memory[ks[1]], 3)}


def learning_figures(work: Path, seeds: list[int], steps: int) -> dict:
    """learning_parity and return_parity of bench/_learning_parity.py's runs."""
    import _learning_parity

    from realrl_learner.sac import SACConfig
    runs = []
    for seed in seeds:
        for mode in ('memory', 'store'):
            r = _learning_parity.run(mode, seed, steps, 0.25, work, SACConfig())
            runs.append(r)
            print(f'  learning, seed {seed}, {mode:6}: eval success {r["eval_success"]:.2f}, '
                  f'return {r["initial_return"]:.2f} -> {r["eval_return"]:.2f}, last 20 '
                  f'training episodes {r["train_success_last20"]:.2f}, {r["updates"]} updates '
                  f'in {r["train_s"]} s', flush=True)
    by = {m: [r for r in runs if r['mode'] == m] for m in ('memory', 'store')}
    success = {m: float(np.mean([r['eval_success'] for r in v])) for m, v in by.items()}
    gains = [(s['eval_return'] - s['initial_return']) / (m['eval_return'] - m['initial_return'])
             for m, s in zip(by['memory'], by['store'])]
    return {
        'learning_parity': round(success['store'] / success['memory'], 3)
        if success['memory'] > 0 else None,
        'return_parity': round(float(np.median(gains)), 3),
        'eval_success': {m: round(v, 3) for m, v in success.items()},
        'learning_runs': runs, 'learning_steps': steps, 'learning_seeds': seeds,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='short run (seconds)')
    ap.add_argument('--dir', default=None, help='folder for the store (default: a temp dir)')
    ap.add_argument('--update-ms', type=float, default=0.0,
                    help='simulated learner update per batch (default 0: sampling only)')
    ap.add_argument('--no-learning', action='store_true', help='skip learning parity')
    ap.add_argument('--seeds', type=int, nargs='+', default=None,
                    help='learning parity seeds (default: 0 with --quick, else 0 1 2)')
    ap.add_argument('--learning-steps', type=int, default=None,
                    help='env steps of each learning run (default 1500 with --quick, else 2000)')
    args = ap.parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    steps = args.learning_steps or (1500 if args.quick else 2000)
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
        cover = coverage_figures(work / 'store', store_raw, rows, 0)
        print(f'coverage after {cover["k_batches"]} batches of {BATCH} over {rows} rows: cache '
              f'25% {cover["cache_25"]} vs uniform in memory {cover["memory_uniform"]}',
              flush=True)
        learning = {} if args.no_learning else learning_figures(work, seeds, steps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        'p50_ms': p50s[0.25],
        'throughput_ratio_vs_memory': curve[0.25],
        'curve': {str(k): v for k, v in curve.items()},
        'coverage_ratio': cover['coverage_ratio'],
        'learning_parity': learning.get('learning_parity'),
        'return_parity': learning.get('return_parity'),
        'coverage': cover,
        'memory_batches_per_s': round(base, 1),
        'memory_p50_ms': round(1e3 * statistics.median(base_lat), 2),
        'block_loads_per_s': {str(k): v for k, v in loads.items()},
        'store_rows': rows, 'batch': BATCH, 'update_ms': args.update_ms,
        'repeats': repeats, 'seconds_each': seconds,
        **{k: v for k, v in learning.items() if k not in ('learning_parity', 'return_parity')},
    }
    print(f'memory baseline: {base:.1f} batches/s, p50 {result["memory_p50_ms"]} ms '
          f'({rows} rows, {store_raw / 2**30:.2f} GiB in RAM)')
    print(f'coverage ratio (25% cache / uniform in memory, after {cover["k_batches"][1]} '
          f'batches): {cover["coverage_ratio"]}')
    if learning:
        print(f'learning parity ({len(seeds)} seeds x {steps} env steps, cache 25% of the final '
              f'store): success {learning["eval_success"]["store"]} (store) vs '
              f'{learning["eval_success"]["memory"]} (memory) -> {learning["learning_parity"]}; '
              f'return parity {learning["return_parity"]}')
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    sys.exit(main() and 0)
