"""Soak: the demo graph trains for hours; its processes must not grow.

`realrl train` runs the reach demo with --no-stop-at-success for ``--hours`` (2 by default;
--quick: 4 minutes). Every 10 s the harness reads, for each node process of the run (found by
its command line, so a restarted node is followed), its resident memory (VmRSS), open files
(/proc/<pid>/fd) and threads, and the shared-memory files they map or hold open. Warm-up is the
first 10 % of the run (at least 60 s): imports, the first weights, the replay cache filling.

Figures: rss_growth_frac = (total RSS over the last 10 % of samples) / (total RSS over the
first 10 % after warm-up) - 1 (target <= 0.05); fd_growth, thread_growth and shm_growth:
the same difference in counts (target 0). Baseline: the same totals at the end of warm-up,
reported beside them; restarts during the run are reported (a restarted process starts
small, so growth is computed only if no node restarted).
Left out: the launcher process itself, and growth slower than the run can show.
"""
import json
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _util import REALRL, ROOT, bench_env, emit, parse, require_workspace

from realrl_bringup.chaos import node_processes
from realrl_bringup.shm_cleanup import files_of


def sample(run_dir: Path) -> dict:
    """Totals over the run's node processes now: rss_kb, fds, threads, nodes; and shm files."""
    rss = fds = threads = 0
    nodes = node_processes(run_dir)
    shm: set[str] = set()
    for pid in nodes.values():
        shm |= files_of(pid)
        try:
            status = Path(f'/proc/{pid}/status').read_text()
            fds += len(list(Path(f'/proc/{pid}/fd').iterdir()))
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith('VmRSS:'):
                rss += int(line.split()[1])
            elif line.startswith('Threads:'):
                threads += int(line.split()[1])
    return {'t': time.monotonic(), 'rss_kb': rss, 'fds': fds, 'threads': threads,
            'nodes': tuple(sorted(nodes.items())), 'shm': len(shm)}


def main():
    args = parse(__doc__, lambda p: p.add_argument('--hours', type=float, default=2.0))
    require_workspace()
    hours = 4 / 60 if args.quick else args.hours
    duration = hours * 3600
    warmup = max(60.0, 0.1 * duration)
    env = bench_env(59)
    with tempfile.TemporaryDirectory(prefix='soak-') as tmp:
        run_dir, log = Path(tmp) / 'run', Path(tmp) / 'train.log'
        with open(log, 'wb') as f:
            # --max-wall-s: the graph's own limit (900 s for the demo) must not end it first
            p = subprocess.Popen([str(REALRL), 'train', '--run-dir', str(run_dir),
                                  '--no-stop-at-success', '--status-every-s', '30',
                                  '--max-wall-s', str(duration + 600)],
                                 stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                 start_new_session=True)
        samples, start = [], time.monotonic()
        try:
            while time.monotonic() - start < duration and p.poll() is None:
                time.sleep(10.0)
                s = sample(run_dir)
                if s['nodes']:
                    samples.append(s)
            ran_s = time.monotonic() - start
            ended_early = p.poll() is not None
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(90)
            except subprocess.TimeoutExpired:
                subprocess.run(['kill', '-9', f'-{p.pid}'], check=False)
                p.wait()
        summary = json.loads((run_dir / 'summary.json').read_text())
    after = [s for s in samples if s['t'] - start >= warmup]
    pids = {s['nodes'] for s in after}
    k = max(1, len(after) // 10)
    head, tail = after[:k], after[-k:]

    def mean(rows, key):
        return float(np.mean([r[key] for r in rows])) if rows else float('nan')
    growth = {key: mean(tail, key) - mean(head, key) for key in ('fds', 'threads', 'shm')}
    rss_frac = mean(tail, 'rss_kb') / mean(head, 'rss_kb') - 1 if head else float('nan')
    if ended_early:
        print(f'soak: the run ended by itself after {ran_s:.0f} s of the {duration:.0f} s asked: '
              'the figures cover only that', flush=True)
    print(f'{ran_s / 3600:.2f} h, {len(samples)} samples ({len(after)} after {warmup:.0f} s '
          'warm-up), '
          f'node processes changed {len(pids) - 1} times: RSS {mean(head, "rss_kb") / 1024:.0f}'
          f' -> {mean(tail, "rss_kb") / 1024:.0f} MiB ({100 * rss_frac:+.1f} %), fds '
          f'{mean(head, "fds"):.0f} -> {mean(tail, "fds"):.0f}, threads '
          f'{mean(head, "threads"):.0f} -> {mean(tail, "threads"):.0f}, shm files '
          f'{mean(head, "shm"):.0f} -> {mean(tail, "shm"):.0f}; '
          f'{summary["episodes"]} episodes, success {summary["final_success_rate"]:.2f}')
    emit({'hours': round(ran_s / 3600, 3), 'ended_early': ended_early,
          'rss_growth_frac': round(rss_frac, 4),
          'fd_growth': growth['fds'], 'thread_growth': growth['threads'],
          'shm_growth': growth['shm'], 'restarts': len(pids) - 1,
          'baseline_rss_mb': round(mean(head, 'rss_kb') / 1024, 1),
          'baseline_fds': mean(head, 'fds'), 'baseline_threads': mean(head, 'threads'),
          'samples': len(after), 'episodes': summary['episodes']})


if __name__ == '__main__':
    main()
