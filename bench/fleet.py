"""A fleet on one machine: sixteen simulated arms of two kinds (eight Panda-like 7-DoF, eight
UR5e-like 6-DoF, state observations) feeding one replay store and one learner, leased for the
run from the hardware manager.

The graph is config/multi_arm_sim.yaml grown to 16 drivers at 10 Hz, plus a hardware_manager
node and a `lease` section: `realrl train` configures the drivers, leases all sixteen at once,
then activates them. Every driver logs its tick times; a probe process listens to all
transitions and the replay node's acks.

Figures: per-robot control period error p99 after warm-up (|period - 0.1 s| / 0.1 s; the
worst robot is `period_error_p99_max`, target <= 10 %), ack latency p99 (from a transition's
arrival at the probe to the first ack covering it), `lost` (gaps or repeats in any robot's
sequence numbers in the store afterwards) and the transitions still unacknowledged at the
end. Baseline, at the same time and scheduling: a bare 10 Hz rclpy timer in a process of its
own (bench/control_clock.py's), whose p99 is what the machine gives any 10 Hz clock under
that load.

Left out: cameras (sixteen rendering arms do not fit two cores at 10 Hz), and the learner's
updates per second under this load are reported, not targeted.
"""
import json
import tempfile
from pathlib import Path

import numpy as np
import yaml
from _util import (
    ROOT,
    bench_env,
    emit,
    parse,
    percentile,
    require_workspace,
    start_process,
    stop_process,
)
from control_clock import HZ, REALTIME_PRIORITY, pass_figures, run_graph_with_baseline

from realrl_bringup.chaos import store_invariants

CONFIG = ROOT / 'config' / 'multi_arm_sim.yaml'
MANAGER = {'name': 'hardware_manager', 'package': 'realrl_hardware',
           'executable': 'hardware_manager', 'restart': 'on_failure',
           'parameters': {'activate': False}}


def fleet_graph(tmp: Path, per_kind: int) -> tuple[Path, dict, dict]:
    """The multi-arm graph with per_kind arms of each kind: (path, tick logs, kinds)."""
    graph = yaml.safe_load(CONFIG.read_text())
    templates = {}
    others = []
    for node in graph['nodes']:
        if node['package'] == 'realrl_driver':
            templates.setdefault(node['parameters']['arm']['model'], node)
        else:
            others.append(node)
    drivers, logs, kinds = [], {}, {}
    for model, template in sorted(templates.items()):
        for i in range(per_kind):
            rid = f'{model}_{i}'
            node = yaml.safe_load(yaml.safe_dump(template))
            node['namespace'] = rid
            logs[rid] = tmp / f'{rid}.jsonl'
            node['parameters'].update(robot_id=rid, control_hz=HZ, seed=1000 * len(drivers),
                                      timing_log=str(logs[rid]),
                                      realtime_priority=REALTIME_PRIORITY)
            drivers.append(node)
            kinds[rid] = model
    for node in others:
        if 'robot_ids' in node.get('parameters', {}):
            node['parameters']['robot_ids'] = sorted(logs)
    graph['nodes'] = [MANAGER, *others, *drivers]
    graph['lease'] = {'enabled': True, 'ttl_s': 10.0, 'wait_s': 60.0}
    path = tmp / 'fleet.yaml'
    path.write_text(yaml.safe_dump(graph))
    return path, logs, kinds


def main():
    args = parse(__doc__, lambda p: p.add_argument('--per-kind', type=int, default=8))
    require_workspace()
    duration = 45.0 if args.quick else 120.0
    env = bench_env(151)
    with tempfile.TemporaryDirectory(prefix='realrl-bench-fleet-') as tmp:
        tmp = Path(tmp)
        config, logs, kinds = fleet_graph(tmp, args.per_kind)
        probe_out = tmp / 'acks.json'
        probe = start_process([str(ROOT / '.venv/bin/python'), str(ROOT / 'bench/_ack_probe.py'),
                               str(probe_out), str(duration + 90), *sorted(logs)], env,
                              tmp / 'probe.log')
        try:
            result = run_graph_with_baseline(['--config', str(config)], env, tmp / 'run',
                                             duration, REALTIME_PRIORITY, robots=len(logs))
        finally:
            stop_process(probe, grace_s=10.0)
        figures = pass_figures('fleet', REALTIME_PRIORITY, result, logs)
        acks = json.loads(probe_out.read_text()) if probe_out.exists() else {}
        store = store_invariants(result['run_dir'] / 'replay')
        summary = json.loads((result['run_dir'] / 'summary.json').read_text())
    lat = [x for v in acks.get('latency_s', {}).values() for x in v]
    ack_p99 = percentile(lat, 99) * 1e3 if lat else float('nan')
    print(f'{len(logs)} robots of {len(set(kinds.values()))} kinds, leased: worst period p99 '
          f'{100 * figures["period_error_p99"]:.2f} % vs. a bare timer at the same time and '
          f'priority {100 * figures["baseline_concurrent_p99"]:.2f} % (target <= 10 %); ack '
          f'p50 {np.median(lat) * 1e3 if lat else float("nan"):.1f} ms, p99 {ack_p99:.1f} ms '
          f'over {len(lat)} transitions; store {store}; learner '
          f'{figures["learner_updates_per_s"]:.0f} updates/s')
    emit({'robots': len(logs), 'kinds': sorted(set(kinds.values())),
          'period_error_p99_max': figures['period_error_p99'],
          'baseline_concurrent_p99': figures['baseline_concurrent_p99'],
          'priority_granted': figures['priority_granted'],
          'held_ticks': figures['held_ticks'], 'ack_p99_ms': round(ack_p99, 2),
          'acked': len(lat), 'unacked_at_end': sum(acks.get('unacked', {}).values()),
          'lost': store['lost'] + store['duplicated'], 'stored': store['rows'],
          'outcome': summary.get('outcome'),
          'per_robot': {r: v['p99'] for r, v in figures['per_robot'].items()},
          'learner_updates_per_s': figures['learner_updates_per_s']})


if __name__ == '__main__':
    main()
