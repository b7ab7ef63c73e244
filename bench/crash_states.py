"""Crash states of the replay writer: what a power cut may leave, checked state by state.

Records the writer's file-system operations (writes, truncations, fsyncs, creations, renames,
deletions; fs_trace.Recorder) while it ingests transitions of three robots (camera-like
rendered 24x24 frames with sensor noise as obs and next_obs images, next_obs linked, state,
action, flags) with pipelined commits as the replay node makes them, on the real file system
with fsync (O_DIRECT shards where it allows). Then, for a crash after each operation, builds
the states POSIX ordering allows (per file: everything up to its last completed sync, any
subset of its later writes, writes torn at 512-byte sectors; per folder: entries up to its
last sync, any subset of later ones), up to --per-point distinct states each, writes each into
a fresh folder (tmpfs), recovers it with ReplayWriter.open, commits one more transition per
robot, reads every row back with ReplayReader and counts the states that lose, duplicate,
reorder or tear a transition (acknowledged rows, and rows of any commit the marker counts).

Baseline, same run: the same checker on the same ingest by a writer with a planted ordering
bug (the commit marker written and fdatasync-ed before its shards' fdatasync): it must find
bad states, or the checker proves nothing.

Left out: states are sampled (seeded), not exhaustive, where a crash point has many unsynced
operations; the model keeps sector writes atomic and never shows garbage, ignores renames
across folders and devices that lie about flushes (see fs_trace.py); images are small so
that ten thousand recoveries fit in minutes; retention (shard deletion) is not traced.
Ends with one JSON line: states_checked, commits_traced, bad_states, planted_*.

    PYTHONPATH=src/realrl_replay python bench/crash_states.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from realrl_replay.crash_states import check_trace, trace_ingest


def _scratch(root: str | None) -> Path:
    base = root or ('/dev/shm' if os.path.isdir('/dev/shm') else None)
    return Path(tempfile.mkdtemp(prefix='crash_states_', dir=base))


def _run(commits: int, per_point: int, seed: int, planted: bool, max_states, disk: Path,
         states_dir: Path) -> dict:
    start = time.perf_counter()
    trace = trace_ingest(disk / ('planted' if planted else 'real'), commits, seed,
                         planted=planted)
    traced_s = time.perf_counter() - start
    report = check_trace(trace, states_dir, per_point, seed, max_states)
    return {'trace': trace, 'report': report, 'trace_s': traced_s,
            'check_s': time.perf_counter() - start - traced_s}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='a short run (under 2 minutes)')
    ap.add_argument('--commits', type=int, default=None, help='commits to trace')
    ap.add_argument('--per-point', type=int, default=None, help='states per crash point')
    ap.add_argument('--seed', type=int, default=7)
    ap.add_argument('--dir', default=None, help='folder for the traced store (default: tmp)')
    args = ap.parse_args(argv)
    commits = args.commits or (20 if args.quick else 120)
    per_point = args.per_point or (4 if args.quick else 24)
    disk = Path(tempfile.mkdtemp(prefix='crash_trace_', dir=args.dir))
    states_dir = _scratch(None)
    try:
        real = _run(commits, per_point, args.seed, False, None, disk, states_dir)
        # baseline: same ingest, planted bug; capped so that it costs a fraction of the run
        cap = max(300, real['report'].states // 5)
        bug = _run(commits, per_point, args.seed, True, cap, disk, states_dir)
    finally:
        shutil.rmtree(disk, ignore_errors=True)
        shutil.rmtree(states_dir, ignore_errors=True)
    r, b = real['report'], bug['report']
    ops = real['trace'].ops
    result = {
        'states_checked': r.states, 'commits_traced': real['trace'].commits,
        'bad_states': r.bad, 'crash_points': r.points, 'ops_traced': len(ops),
        'fsyncs_traced': sum(op.kind in ('sync', 'dirsync') for op in ops),
        'transitions': len(real['trace'].expected),
        'check_s': round(real['check_s'], 1),
        'ms_per_state': round(1e3 * real['check_s'] / max(1, r.states), 2),
        'bad_kinds': dict(r.kinds),
        'planted_states_checked': b.states, 'planted_bad_states': b.bad,
        'planted_bad_kinds': dict(b.kinds),
        'load_avg_1m': round(os.getloadavg()[0], 2),
    }
    print(f'real writer: {real["trace"].commits} commits ({len(real["trace"].expected)} '
          f'transitions, {len(ops)} file-system ops, {result["fsyncs_traced"]} syncs) traced in '
          f'{real["trace_s"]:.1f} s; {r.states} crash states at {r.points} crash points '
          f'checked in {real["check_s"]:.1f} s: {r.bad} bad {dict(r.kinds)}')
    for line in r.examples:
        print('  ', line)
    print(f'baseline, planted bug (marker fdatasync-ed before its shards): {b.states} states '
          f'checked in {bug["check_s"]:.1f} s: {b.bad} bad {dict(b.kinds)}')
    for line in b.examples[:2]:
        print('  ', line)
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    main()
