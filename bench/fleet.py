"""A fleet on one machine: sixteen simulated arms of two kinds (eight Panda-like 7-DoF, eight
UR5e-like 6-DoF, state observations) feeding one replay store and one learner, leased for the
run from the hardware manager.

The graph is config/multi_arm_sim.yaml grown to 16 drivers at 10 Hz, plus a hardware_manager
node and a `lease` section: `realrl train` configures the drivers, leases all sixteen at once,
then activates them. Every driver logs its tick times; a probe process listens to all
transitions and the replay node's acks.

Figures: per-robot control period error p99 after warm-up (|period - 0.1 s| / 0.1 s; the
worst robot is `period_error_p99_max`, target <= 10 %; `robots_within_target`), the share
of ticks held for a late action or label, ack latency p99 (from a transition's stamp, the
driver's tick that closed it, to the arrival at the probe of the first ack covering it; the
probe's thread runs SCHED_FIFO at the replay node's priority), `lost` (gaps or repeats in
any robot's sequence numbers in the store afterwards), the transitions still
unacknowledged at the end, and the load average when the run ended. The graph's
scheduling is the product's: drivers SCHED_FIFO 20, policy, reward and hardware manager 10,
replay 5, learner nice 10 (`--serving-rt` sets the policy's and reward node's instead).

Baseline, at the same time and scheduling: a bare 10 Hz rclpy timer in a process of its
own (bench/control_clock.py's), whose p99 is what the machine gives any 10 Hz clock under
that load.

Left out: cameras (sixteen rendering arms do not fit two cores at 10 Hz); the learner's
updates per second under this load are reported, not targeted (it runs below everything on
the control path, so on a loaded machine it may get next to nothing); the other sessions'
load on the machine is whatever it is, the same for the graph and the baseline.
"""
import json
import os
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

TARGET = 0.10  # every robot's period error p99
PROBE_RT = 5  # the ack probe's SCHED_FIFO priority: the replay node's in multi_arm_sim.yaml
CONFIG = ROOT / 'config' / 'multi_arm_sim.yaml'
MANAGER = {'name': 'hardware_manager', 'package': 'realrl_hardware',
           'executable': 'hardware_manager', 'restart': 'on_failure',
           'parameters': {'activate': False, 'realtime_priority': 10}}


def fleet_graph(tmp: Path, per_kind: int, serving_rt: int | None = None
                ) -> tuple[Path, dict, dict]:
    """The multi-arm graph with per_kind arms of each kind: (path, tick logs, kinds).
    serving_rt: the policy's and reward node's realtime_priority instead of the graph's."""
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
        if serving_rt is not None and node['package'] in ('realrl_policy', 'realrl_reward'):
            node['parameters']['realtime_priority'] = serving_rt
    graph['nodes'] = [MANAGER, *others, *drivers]
    graph['lease'] = {'enabled': True, 'ttl_s': 10.0, 'wait_s': 60.0}
    path = tmp / 'fleet.yaml'
    path.write_text(yaml.safe_dump(graph))
    return path, logs, kinds


def read_probe(out: Path, log: Path) -> dict:
    """The ack probe's record; SystemExit if it wrote none or heard no transition (a probe
    that measured nothing must not read as a figure)."""
    if not out.exists():
        raise SystemExit(f'the ack probe wrote no {out.name}; its log:\n'
                         f'{log.read_text(errors="replace")[-2000:]}')
    acks = json.loads(out.read_text())
    if not acks['heard']['transitions'] or not acks['heard']['acks']:
        raise SystemExit(f'the ack probe heard {acks["heard"]} (transitions, acks): nothing to '
                         'measure ack latency on; check its domain and topics')
    return acks


def main():
    def options(p):
        p.add_argument('--per-kind', type=int, default=8)
        p.add_argument('--duration', type=float, help='seconds of the run (45 quick, 120)')
        p.add_argument('--serving-rt', type=int, help="the policy's and reward node's "
                       'realtime_priority (default: as config/multi_arm_sim.yaml sets it)')
    args = parse(__doc__, options)
    require_workspace()
    duration = args.duration or (45.0 if args.quick else 120.0)
    env = bench_env(151)
    with tempfile.TemporaryDirectory(prefix='realrl-bench-fleet-') as tmp:
        tmp = Path(tmp)
        config, logs, kinds = fleet_graph(tmp, args.per_kind, args.serving_rt)
        probe_out = tmp / 'acks.json'
        probe = start_process([str(ROOT / '.venv/bin/python'), str(ROOT / 'bench/_ack_probe.py'),
                               str(probe_out), str(duration + 900), str(PROBE_RT),
                               *sorted(logs)], env,
                              tmp / 'probe.log')
        try:
            result = run_graph_with_baseline(['--config', str(config)], env, tmp / 'run',
                                             duration, REALTIME_PRIORITY, robots=len(logs))
        finally:
            load = os.getloadavg()  # the 1- and 5-minute averages: the run's last minutes
            stop_process(probe, grace_s=10.0)
        figures = pass_figures('fleet', REALTIME_PRIORITY, result, logs)
        acks = read_probe(probe_out, tmp / 'probe.log')
        store = store_invariants(result['run_dir'] / 'replay')
        summary = json.loads((result['run_dir'] / 'summary.json').read_text())
    lat = [x for v in acks.get('latency_s', {}).values() for x in v]
    per_robot = figures['per_robot']
    within = sum(v['p99'] <= TARGET for v in per_robot.values())
    ticks = sum(v['ticks'] for v in per_robot.values())
    held_share = figures['held_ticks'] / max(1, ticks)
    ack_p99 = percentile(lat, 99) * 1e3 if lat else float('nan')
    print(f'{len(logs)} robots of {len(set(kinds.values()))} kinds, leased: worst period p99 '
          f'{100 * figures["period_error_p99"]:.2f} % vs. a bare timer at the same time and '
          f'priority {100 * figures["baseline_concurrent_p99"]:.2f} % (target <= 10 %); ack '
          f'p50 {np.median(lat) * 1e3 if lat else float("nan"):.1f} ms, p99 {ack_p99:.1f} ms '
          f'over {len(lat)} transitions; store {store}; learner '
          f'{figures["learner_updates_per_s"]:.0f} updates/s; {within} of {len(logs)} robots '
          f'<= {100 * TARGET:.0f} %; {100 * held_share:.1f} % of the ticks held; load average '
          f'{load[0]:.1f} (1 min), {load[1]:.1f} (5 min)')
    emit({'robots': len(logs), 'kinds': sorted(set(kinds.values())),
          'period_error_p99_max': figures['period_error_p99'],
          'baseline_concurrent_p99': figures['baseline_concurrent_p99'],
          'priority_granted': figures['priority_granted'],
          'robots_within_target': within, 'held_ticks': figures['held_ticks'],
          'held_share': round(held_share, 4), 'load_avg_1m_5m': [round(x, 2) for x in load[:2]],
          'ack_p99_ms': round(ack_p99, 2),
          'acked': len(lat), 'probe_heard': acks['heard'],
          'unacked_at_end': sum(acks.get('unacked', {}).values()),
          'lost': store['lost'] + store['duplicated'], 'stored': store['rows'],
          'outcome': summary.get('outcome'),
          'per_robot': {r: v['p99'] for r, v in figures['per_robot'].items()},
          'learner_updates_per_s': figures['learner_updates_per_s']})


if __name__ == '__main__':
    main()
