"""How well four robots of two kinds keep their 10 Hz control periods on this machine while
the learner trains flat out.

The graph of config/multi_arm_sim.yaml runs: two Panda-like 7-DoF and two UR5e-like 6-DoF
arms at 10 Hz, one replay store, one learner, one policy and one reward node, with the
learner's UTD cap lifted (learner.sac.updates_per_step=1000, learning_starts=50) so it
trains as fast as it can on the same cores. Every driver logs every tick time. Period error
= |actual period - 0.1 s| / 0.1 s over each driver's ticks after its first 5 s; the figure is
the worst robot's p99. Baseline, measured in the same run: a bare rclpy timer at 10 Hz in a
process of its own on an otherwise idle machine (as in bench/control_clock.py).
"""
import json
import tempfile
from pathlib import Path

import numpy as np
import yaml

from _util import ROOT, bench_env, emit, parse, percentile, require_workspace, run_realrl
from control_clock import HZ, bare_timer_errors, errors

CONFIG = ROOT / 'config' / 'multi_arm_sim.yaml'


def main():
    args = parse(__doc__)
    require_workspace()
    duration = 25.0 if args.quick else 90.0
    env = bench_env(141)
    base = bare_timer_errors(env, min(duration, 30.0))
    from realrl_driver.core.clock_stats import read_tick_log
    with tempfile.TemporaryDirectory(prefix='realrl-bench-multi-') as tmp:
        tmp = Path(tmp)
        graph = yaml.safe_load(CONFIG.read_text())
        kinds, logs = {}, {}
        for node in graph['nodes']:
            if node['package'] == 'realrl_driver':
                rid = node['parameters']['robot_id']
                node['parameters'].update(control_hz=HZ, timing_log=str(tmp / f'{rid}.jsonl'))
                kinds[rid] = node['parameters']['arm']['model']
                logs[rid] = tmp / f'{rid}.jsonl'
        config = tmp / 'graph.yaml'
        config.write_text(yaml.safe_dump(graph))
        run_dir = tmp / 'run'
        run_realrl(['train', '--config', str(config), '--run-dir', str(run_dir),
                    '--no-stop-at-success', '--max-wall-s', str(duration),
                    '--set', 'learner.sac.updates_per_step=1000',
                    '--set', 'learner.sac.learning_starts=50'],
                   env, tmp / 'train.log', timeout_s=duration + 120)
        per_robot = {}
        for rid, path in logs.items():
            err = errors(read_tick_log(str(path)))
            per_robot[rid] = {'p50': round(float(np.median(err)), 5),
                              'p99': round(percentile(err, 99), 5),
                              'max': round(float(err.max()), 5), 'periods': int(len(err))}
        learner = [json.loads(x) for x in
                   (run_dir / 'metrics/learner.jsonl').read_text().splitlines()]
        trained = [r for r in learner if r['updates'] > 0]
        ups = ((trained[-1]['updates'] - trained[0]['updates']) /
               max(1e-9, trained[-1]['time_s'] - trained[0]['time_s'])) if len(trained) > 1 else 0.0
        summary = json.loads((run_dir / 'summary.json').read_text())
    for rid, r in per_robot.items():
        print(f'{rid} ({kinds[rid]}) at {HZ:g} Hz: p50 {100 * r["p50"]:.2f} %, '
              f'p99 {100 * r["p99"]:.2f} %, max {100 * r["max"]:.2f} % ({r["periods"]} periods)')
    worst = max(r['p99'] for r in per_robot.values())
    print(f'{len(per_robot)} robots of {len(set(kinds.values()))} kinds with the learner at '
          f'{ups:.0f} updates/s ({summary["stored"]} transitions stored, '
          f'{summary["rejected_actions"]} actions rejected): worst p99 {100 * worst:.2f} % '
          f'(target <= 10 %)')
    emit({'robots': len(per_robot), 'kinds': sorted(set(kinds.values())),
          'period_error_p99_max': worst, 'hz': HZ, 'per_robot': per_robot,
          'learner_updates_per_s': round(ups, 1), 'stored': summary['stored'],
          'baseline_bare_timer_p50': round(float(np.median(base)), 5),
          'baseline_bare_timer_p99': round(percentile(base, 99), 5)})


if __name__ == '__main__':
    main()
