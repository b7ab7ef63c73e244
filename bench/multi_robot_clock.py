"""How well four robots of two kinds keep their 10 Hz control periods on this machine while
the learner trains flat out.

The graph of config/multi_arm_sim.yaml runs: two Panda-like 7-DoF and two UR5e-like 6-DoF
arms at 10 Hz, one replay store, one learner, one policy and one reward node, with the
learner's UTD cap lifted (learner.sac.updates_per_step=1000, learning_starts=50) so it
trains as fast as it can on the same cores. Every driver logs every tick time and which
ticks held. Period error = |actual period - 0.1 s| / 0.1 s over each driver's ticks after its
first 5 s; the figure is the worst robot's p99.

Two passes, one after the other: the graph as configured (every driver's control thread at
SCHED_FIFO priority 20, the policy and reward nodes at 10, replay 5), and again with
realtime_priority 0 on every node (drivers at nice -5, all at normal scheduling; a serving
node may not stay above the drivers).
What each control thread actually got is read back from /proc/<tid>/stat while the graph
runs, not assumed.

Baselines (as in bench/control_clock.py): concurrent, a bare rclpy timer at 10 Hz in a
process of its own, started with the graph and measured over the same window at the same
scheduling as the drivers in that pass; idle, the same timer alone at nice 0 before the graph
starts. Held ticks (the action or label for the current observation was late, nothing was
applied) are counted apart from on-time ticks, summed over the robots.

Left out: the tick's own work after the timer fired, DDS latency to the policy, and the other
helpers' load on the machine (the same for the graph and the concurrent baseline).
"""
import json
import tempfile
from pathlib import Path

import numpy as np
import yaml
from _util import ROOT, bench_env, emit, parse, percentile, require_workspace
from control_clock import (
    HZ,
    REALTIME_PRIORITY,
    bare_timer_errors,
    figure,
    pass_figures,
    run_graph_with_baseline,
)

CONFIG = ROOT / 'config' / 'multi_arm_sim.yaml'


def write_graph(tmp: Path, realtime_priority: int) -> tuple[Path, dict, dict]:
    """The multi-arm graph with tick logs and this realtime_priority on every driver (0: on
    every node): (its path, {robot_id: tick log}, {robot_id: arm model})."""
    graph = yaml.safe_load(CONFIG.read_text())
    kinds, logs = {}, {}
    for node in graph['nodes']:
        if realtime_priority == 0 and 'realtime_priority' in node.get('parameters', {}):
            node['parameters']['realtime_priority'] = 0
        if node['package'] == 'realrl_driver':
            rid = node['parameters']['robot_id']
            logs[rid] = tmp / f'{rid}.jsonl'
            node['parameters'].update(control_hz=HZ, timing_log=str(logs[rid]),
                                      realtime_priority=realtime_priority)
            kinds[rid] = node['parameters']['arm']['model']
    config = tmp / 'graph.yaml'
    config.write_text(yaml.safe_dump(graph))
    return config, logs, kinds


def main():
    args = parse(__doc__)
    require_workspace()
    duration = 20.0 if args.quick else 90.0
    env = bench_env(141)
    with tempfile.TemporaryDirectory(prefix='realrl-bench-multi-') as tmp:
        tmp = Path(tmp)
        idle = bare_timer_errors(env, 6.0 if args.quick else 30.0, tmp)
        passes = {}
        for name, rt in (('realtime', REALTIME_PRIORITY), ('normal', 0)):
            work = tmp / name
            work.mkdir()
            config, logs, kinds = write_graph(work, rt)
            result = run_graph_with_baseline(
                ['--config', str(config), '--set', 'learner.sac.updates_per_step=1000',
                 '--set', 'learner.sac.learning_starts=50'], env, work, duration, rt,
                robots=len(logs))
            passes[name] = pass_figures(name, rt, result, logs)
            summary = (result['run_dir'] / 'summary.json')
            passes[name]['summary'] = json.loads(summary.read_text()) \
                if summary.exists() else {}
    main_pass = passes['realtime']  # the graph as configured
    s = main_pass['summary']
    print(f'{len(logs)} robots of {len(set(kinds.values()))} kinds with the learner at '
          f'{main_pass["learner_updates_per_s"]:.0f} updates/s ({s.get("stored")} transitions '
          f'stored, {s.get("rejected_actions")} actions rejected): worst p99 '
          f'{100 * main_pass["period_error_p99"]:.2f} % at SCHED_FIFO {REALTIME_PRIORITY} vs. a '
          f'bare timer at the same priority at the same time '
          f'{100 * main_pass["baseline_concurrent_p99"]:.2f} %; at nice -5: '
          f'{100 * passes["normal"]["period_error_p99"]:.2f} % vs. '
          f'{100 * passes["normal"]["baseline_concurrent_p99"]:.2f} % (target <= 10 %)')
    emit({'robots': len(logs), 'kinds': sorted(set(kinds.values())),
          'period_error_p99_max': main_pass['period_error_p99'], 'hz': HZ,
          'per_robot': main_pass['per_robot'],
          'learner_updates_per_s': main_pass['learner_updates_per_s'],
          'stored': s.get('stored'),
          'baseline_bare_timer_p50': figure(np.median(idle) if len(idle) else None),
          'baseline_bare_timer_p99': figure(percentile(idle, 99)),
          'baseline_concurrent_p99': main_pass['baseline_concurrent_p99'],
          'priority_granted': {name: p['priority_granted'] for name, p in passes.items()},
          'held_ticks': main_pass['held_ticks'],
          'passes': {name: {k: v for k, v in p.items() if k not in ('per_robot', 'summary')}
                     for name, p in passes.items()}})


if __name__ == '__main__':
    main()
