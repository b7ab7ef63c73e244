"""How well the driver keeps its 10 Hz control period while the learner trains flat out.

The demo graph runs with the driver at 10 Hz logging every tick time, and the learner's
UTD cap lifted (learner.sac.updates_per_step=1000, learning_starts=50) so it trains as fast as it can on the
same 2 cores. Period error = |actual period - 0.1 s| / 0.1 s over all ticks after the
first 5 s. Baseline, measured in the same run: a bare rclpy timer at 10 Hz in a process
of its own on an otherwise idle graph.
"""
import json
import subprocess
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from _util import ROOT, bench_env, emit, parse, percentile, require_workspace, run_realrl

HZ = 10.0
BARE_TIMER = textwrap.dedent('''
    import json, sys, time, rclpy
    rclpy.init()
    node = rclpy.create_node('bare_timer')
    stamps = []
    node.create_timer(1.0 / float(sys.argv[1]), lambda: stamps.append(time.monotonic()))
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(stamps))
''')


def errors(stamps, warmup_s=5.0):
    stamps = np.asarray(stamps)
    stamps = stamps[stamps >= stamps[0] + warmup_s]
    return np.abs(np.diff(stamps) - 1.0 / HZ) * HZ


def bare_timer_errors(env: dict, seconds: float) -> np.ndarray:
    """The baseline: period errors of a bare rclpy timer at HZ in a process of its own."""
    out = subprocess.run([str(ROOT / '.venv/bin/python'), '-c', BARE_TIMER, str(HZ),
                          str(seconds)], env=env, capture_output=True, text=True, check=True)
    base = errors(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f'baseline bare rclpy timer: p50 {100 * np.median(base):.2f} %, '
          f'p99 {100 * percentile(base, 99):.2f} % ({len(base)} periods)', flush=True)
    return base


def main():
    args = parse(__doc__)
    require_workspace()
    duration = 25.0 if args.quick else 90.0
    env = bench_env(140)
    base = bare_timer_errors(env, min(duration, 30.0))
    with tempfile.TemporaryDirectory(prefix='realrl-bench-clock-') as tmp:
        run_dir, ticks = Path(tmp) / 'run', Path(tmp) / 'ticks.jsonl'
        run_realrl(['train', '--run-dir', str(run_dir), '--no-stop-at-success',
                    '--max-wall-s', str(duration), '--set', f'driver.control_hz={HZ}',
                    '--set', f'driver.timing_log={ticks}',
                    '--set', 'learner.sac.updates_per_step=1000',
                    '--set', 'learner.sac.learning_starts=50'],
                   env, Path(tmp) / 'train.log', timeout_s=duration + 120)
        from realrl_driver.core.clock_stats import read_tick_log
        err = errors(read_tick_log(str(ticks)))
        learner = [json.loads(x) for x in (run_dir / 'metrics/learner.jsonl').read_text().splitlines()]
        trained = [r for r in learner if r['updates'] > 0]
        ups = ((trained[-1]['updates'] - trained[0]['updates']) /
               max(1e-9, trained[-1]['time_s'] - trained[0]['time_s'])) if len(trained) > 1 else 0.0
    p50, p99 = float(np.median(err)), percentile(err, 99)
    print(f'driver at {HZ:g} Hz with the learner at {ups:.0f} updates/s: p50 {100 * p50:.2f} %, '
          f'p99 {100 * p99:.2f} %, max {100 * err.max():.2f} % ({len(err)} periods; target p99 <= 5 %)')
    emit({'period_error_p50': round(p50, 5), 'period_error_p99': round(p99, 5), 'hz': HZ,
          'periods': int(len(err)), 'learner_updates_per_s': round(ups, 1),
          'baseline_bare_timer_p50': round(float(np.median(base)), 5),
          'baseline_bare_timer_p99': round(percentile(base, 99), 5)})


if __name__ == '__main__':
    main()
