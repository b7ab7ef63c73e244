"""Durable ingest into the replay store: through the store API, and end to end over DDS.

Part 1, store API (``transitions_per_s``): drives the store as the replay node does:
transitions of 4 robots (the node's schema for two 128x128 RGB cameras: obs and next_obs
images, 4 image fields, next_obs equal to the next obs except at episode ends) arrive as one
dict per message; arrivals are appended in batches of --batch, and whenever no commit is in
flight a pipelined commit up to the last chunk boundary starts (commit_async(boundary=True),
fsync on); a transition counts once its commit returned (when the node may acknowledge it).
When 256 transitions wait for a commit, arrivals wait too. ROS message decoding is not
included; images are synthetic.camera_frames (a drawn tabletop plus sensor noise). The
baseline is a preallocated, warm numpy ring buffer fed the same dicts, batch by batch, that
copies every value the store writes (each field, the robot code and the seq), uncompressed.

Part 2, end to end (``e2e_transitions_per_s``): --robots simulated drivers (default 50, at
20 Hz, in --procs processes) publish the drivers' real Transition messages (two 128x128 rgb8
next images; the obs images only at an episode's first step, later ones flagged
images_from_previous as drivers send them; --frames-twice: obs images every time) over DDS
to the installed replay_node executable (fsync on), each through
the drivers' real EpisodeLoop outbox, which drops a transition once /replay/ack covers it and
re-sends it after 2 s otherwise. The frames are MuJoCo renders of the Panda-like arm's
'front' and 'wrist' cameras, plus sensor noise (std --noise): two cores cannot render 2,000
frames/s beside the replay node, so a pool of rendered episodes is made first and each
robot plays its own sequence of them (bench/_e2e_publisher.py). Figures: durable-acked
transitions/s between warm-up and the end, ack latency (first send to the covering ack)
p50/p99, the bytes per transition on disk, the node's CPU and write bytes. The baseline is the
same robots and the same ReplayNode code with its writer replaced by a numpy ring buffer that
copies every row, obs and next_obs images included (bench/_memory_replay_node.py), acking
at the next commit tick. REALRL_BENCH_PROFILE=<folder>: every receiver and robot process
runs under cProfile (main-thread CPU time; bench/_cpu_profile.py).
Transport: Fast DDS's LARGE_DATA builtin transports (shared memory, TCP on loopback) by
default; the transports `realrl train` uses today ('default': builtin shared memory with its
~0.5 MB segment, and UDP) are measured too, in a third run (store): a burst of 200 kB
samples from one publisher to one subscriber got ~20/s through them (LARGE_DATA: ~920/s).
Robots start once the receiver has every robot's description; the first --warmup seconds
are not counted. Every robot process receives every robot's acks (one /replay/ack topic, as
each driver does), and an outbox re-sends what is not acked within 2 s, so an overloaded
pipeline also re-sends: the output gives sent, re-sent, and both sides' CPU.

The disk's sequential write bandwidth is measured in the same run, in the same folder as the
stores, before and after part 2 (O_DIRECT writes of 8 MB, fdatasync every 64 MB; the mean of
the two): ``disk_fraction`` = e2e transitions/s x bytes per transition / that bandwidth.

What the figures leave out: the robots' rendering (played back from the pool), their
Observation messages to the policy (another ~100 kB per tick each, not sent here) and a policy
(the actions are the pool's); marker rewrites and padding count in the node's write bytes but
not in bytes_per_transition (file sizes at the end / rows); the learner reading the store at
the same time; other helpers' load on this shared 2-core machine (the load average is printed).

Prints the figures, a codec survey on the same images, and ends with one JSON line:
transitions_per_s, memory_baseline_per_s, e2e_transitions_per_s, e2e_memory_baseline_per_s,
bytes_per_transition (e2e, rendered frames), disk_write_mb_s, disk_fraction (+ extras).
Medians over repeats.

    .venv/bin/python bench/replay_ingest.py [--quick] [--images camera|render] [--no-dedup]
        [--no-e2e] [--robots 50] [--procs 5] [--hz 20]
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

import _ingest_e2e
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
    dicts, batch by batch, copying every value the store writes (each field, the robot's code
    and the seq; uncompressed, next_obs images included)."""
    buf = {k: np.ones((capacity, *s[0]), s[1]) for k, s in schema.items()}
    codes, seqs = np.zeros(capacity, np.uint16), np.zeros(capacity, np.int64)
    index = {robot: i for i, robot in enumerate(ROBOTS)}
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        group = pool[n % len(pool):n % len(pool) + batch]
        at = n % capacity
        if at + len(group) > capacity:
            at = 0
        for name, column in buf.items():
            np.stack([r[name] for r in group], out=column[at:at + len(group)])
        codes[at:at + len(group)] = [index[r['robot_id']] for r in group]
        seqs[at:at + len(group)] = [r['seq'] for r in group]
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


def _round(x, digits):
    return None if x is None else round(x, digits)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='short run (a few minutes)')
    ap.add_argument('--images', choices=('camera', 'render'), default='camera',
                    help="store-API part: 'camera': drawn tabletop + sensor noise (std 1.5); "
                         "'render': noise-free")
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
    ap.add_argument('--no-e2e', action='store_true', help='skip the end-to-end part')
    ap.add_argument('--robots', type=int, default=50, help='e2e: simulated robots (default 50)')
    ap.add_argument('--procs', type=int, default=5, help='e2e: robot processes (default 5)')
    ap.add_argument('--hz', type=float, default=20.0, help='e2e: control rate (default 20)')
    ap.add_argument('--noise', type=float, default=1.5,
                    help='e2e: sensor noise std added to the rendered frames (default 1.5)')
    ap.add_argument('--domain', type=int, default=145, help='e2e: ROS_DOMAIN_ID (default 145)')
    ap.add_argument('--transport', choices=sorted(_ingest_e2e.TRANSPORTS), default='large_data',
                    help="e2e: Fast DDS transports (default large_data; 'default' is what "
                         'realrl train uses today, measured as well unless --no-default-transport')
    ap.add_argument('--no-default-transport', action='store_true',
                    help="e2e: skip the extra store run over the 'default' transport")
    ap.add_argument('--frames-twice', action='store_true',
                    help='e2e: robots send the obs frames with every transition (drivers send '
                         'each frame once: past step 0 the obs frames are the previous next ones)')
    args = ap.parse_args(argv)
    writer_cfg = (WriterConfig() if args.plain_view_s is None
                  else WriterConfig(plain_view_interval_s=args.plain_view_s))
    seconds, repeats = (3.0, 1) if args.quick else (10.0, 3)
    e2e_s, e2e_warm, episodes = (20.0, 6.0, 6) if args.quick else (40.0, 10.0, 16)
    schema = node_schema()
    noise = 1.5 if args.images == 'camera' else 0.0
    factory = TransitionFactory(schema, noise=noise, episode_len=200)
    pool = make_pool(factory, 1024 if args.quick else 4096)
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix='bench_replay_ingest_', dir=args.dir))
    e2e, disks = {}, []
    try:
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
        disks.append(_ingest_e2e.disk_write_mb_s(work, 256 if args.quick else 1024))
        if not args.no_e2e:
            _util.require_workspace()
            frames = work / 'pool.npz'
            e2e['pool'] = _ingest_e2e.render_pool(frames, episodes, 50, args.noise)
            rendered = np.load(frames)['front'].reshape(-1, 128, 128, 3)
            e2e['survey'] = codec_survey(np.ascontiguousarray(rendered[:32]))
            for kind, domain in (('store', args.domain), ('memory', args.domain + 1)):
                e2e[kind] = _ingest_e2e.run(kind, work, frames, args.robots, args.procs,
                                            args.hz, e2e_s, e2e_warm, domain,
                                            transport=args.transport,
                                            frames_twice=args.frames_twice)
            if args.transport != 'default' and not args.no_default_transport:
                e2e['default'] = _ingest_e2e.run('store', work / 'default', frames, args.robots,
                                                 args.procs, args.hz, e2e_s, e2e_warm,
                                                 args.domain + 2, transport='default',
                                                 frames_twice=args.frames_twice)
            disks.append(_ingest_e2e.disk_write_mb_s(work, 256 if args.quick else 1024))
        create_us = file_create_us(work)  # last: its own deletions would slow later creates
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raw = sum(int(np.prod(s[0])) * np.dtype(s[1]).itemsize for s in schema.values()) + 2 + 8
    rates = [x['rate'] for x in runs]
    disk = statistics.mean(disks)
    result = {
        'transitions_per_s': round(statistics.median(rates)),
        'memory_baseline_per_s': round(statistics.median(memory)),
        'api_bytes_per_transition': int(statistics.median(x['bytes'] for x in runs)),
        'raw_bytes_per_transition': raw,
        'ack_latency_p50_ms': round(statistics.median(x['p50_ms'] for x in runs), 1),
        'ack_latency_p99_ms': round(statistics.median(x['p99_ms'] for x in runs), 1),
        'disk_write_mb_s': round(disk), 'disk_write_probes_mb_s': [round(d) for d in disks],
    }
    if e2e:
        st, mem = e2e['store'], e2e['memory']
        ingest_mb_s = st['transitions_per_s'] * st['bytes_per_transition'] / 1e6
        result.update({
            'e2e_transitions_per_s': round(st['transitions_per_s']),
            'e2e_memory_baseline_per_s': round(mem['transitions_per_s']),
            'e2e_offered_per_s': round(st['offered_per_s']),
            'bytes_per_transition': st['bytes_per_transition'],
            'disk_fraction': round(ingest_mb_s / disk, 3),
            'e2e_ingest_mb_s': round(ingest_mb_s, 1),
            'e2e_ack_p50_ms': round(st['ack_p50_ms'], 1),
            'e2e_ack_p99_ms': round(st['ack_p99_ms'], 1),
            'e2e_memory_ack_p50_ms': round(mem['ack_p50_ms'], 1),
            'e2e_memory_ack_p99_ms': round(mem['ack_p99_ms'], 1),
            'e2e_cpu_ms_per_transition': _round(st['cpu_ms_per_transition'], 2),
            'e2e_memory_cpu_ms_per_transition': _round(mem['cpu_ms_per_transition'], 2),
            'e2e_node_cpu': round(st['node_cpu_per_s'], 2),
            'e2e_memory_node_cpu': round(mem['node_cpu_per_s'], 2),
            'e2e_node_write_mb_s': round(st['node_write_mb_s'], 1),
            'e2e_acked_not_stored': st['acked_not_stored'],
            'e2e_next_obs_linked_share': _round(st['next_obs_linked_share'], 3),
            'e2e_robots': args.robots, 'e2e_procs': args.procs, 'e2e_hz': args.hz,
            'e2e_seconds': e2e_s, 'e2e_warmup_s': e2e_warm,
            'e2e_transport': args.transport, 'e2e_frames_once': not args.frames_twice,
            'e2e_default_transport_per_s': (round(e2e['default']['transitions_per_s'])
                                            if 'default' in e2e else None),
            'e2e_frames': e2e['pool'], 'e2e_store_run': st, 'e2e_memory_run': mem,
            'e2e_default_transport_run': e2e.get('default'),
            'codec_survey_rendered': e2e['survey'],
        })
    result.update({
        'schema': 'replay node, 2 cameras 128x128 (obs + next_obs images)',
        'dedup_next_obs': not args.no_dedup, 'image_codec': args.codec, 'images': args.images,
        'append_batch': args.batch, 'cpus': os.cpu_count(),
        'load_avg_1m': round(os.getloadavg()[0], 2), 'fsync': True, 'repeats': repeats,
        'file_create_cpu_us': round(create_us), 'store_dir': str(work),
        'seconds_each': seconds, 'codec_survey': survey,
        'plain_view_interval_s': writer_cfg.plain_view_interval_s,
    })
    print(f'store API: node schema (2 cameras, obs+next_obs), images={args.images} (noise std '
          f'{noise}), codec {args.codec}, dedup_next_obs={not args.no_dedup}, appends of '
          f'{args.batch}, pipelined boundary commits, fsync on; {os.cpu_count()} cpus, load '
          f'average {os.getloadavg()[0]:.2f} at the end')
    print(f'codec survey on 32 drawn frames (one chunk): {json.dumps(survey)}')
    print(f'disk sequential write (O_DIRECT, fdatasync): {[round(d) for d in disks]} MB/s; '
          f'creating a file: {create_us:.0f} us of CPU in {work.parent}')
    print(f'store API: {result["transitions_per_s"]} durable transitions/s (runs: '
          f'{[round(r) for r in rates]}), {result["api_bytes_per_transition"]} B/transition on '
          f'disk (raw {raw} B), ack latency p50 {result["ack_latency_p50_ms"]} ms, p99 '
          f'{result["ack_latency_p99_ms"]} ms')
    print(f'memory ring buffer baseline: {result["memory_baseline_per_s"]} transitions/s')
    if e2e:
        st, mem = e2e['store'], e2e['memory']
        print(f'e2e frames: {json.dumps(e2e["pool"])} (rendered first, played back by the '
              f'robots); codec survey on 32 of them: {json.dumps(e2e["survey"])}')
        named = [('replay_node (store, fsync)', st), ('in-memory baseline node', mem)]
        if 'default' in e2e:
            named.append(('replay_node (store, fsync)', e2e['default']))
        for name, r in named:
            print(f'e2e {name}, transport {r["transport"]}: {r["transitions_per_s"]:.0f} '
                  f'durable-acked transitions/s of {r["offered_per_s"]:.0f} offered '
                  f'({args.robots} robots at {args.hz:g} Hz in {args.procs} processes), ack p50 '
                  f'{r["ack_p50_ms"]:.1f} ms p99 {r["ack_p99_ms"]:.1f} ms; CPU: node '
                  f'{r["node_cpu_per_s"]:.2f}, robots {r["robots_cpu_per_s"]:.2f} cores '
                  f'({_round(r["cpu_ms_per_transition"], 2)} ms per acked transition); sent '
                  f'{r["sent"]}, resends {r["resends"]}, unacked at end {r["unacked_at_end"]}, '
                  f'late ticks {r["late_ticks"]}; load average {r["load_avg_1m"]}')
        print(f'e2e store: {st["rows"]} rows, {st["bytes_per_transition"]} B/transition on disk '
              f'(commit markers {st["marker_bytes"]} B of it; next_obs images linked for '
              f'{_round(st["next_obs_linked_share"], 3)} of the rows), '
              f'{result["e2e_ingest_mb_s"]} MB/s = {result["disk_fraction"]:.1%} of the disk\'s '
              f'{disk:.0f} MB/s (node write bytes {st["node_write_mb_s"]:.1f} MB/s); acked but '
              f'not in the store: {st["acked_not_stored"] or "none"}')
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    sys.exit(main() and 0)
