"""Episode time with the policy in the cloud across a 50 ms-RTT, 100 Mbit/s link vs. one host.

Cloud-edge: ``config/reach_cloud_edge.yaml`` (driver, reward, edge bridge at site lab_a;
router, cloud bridge, policy, replay, learner in the cloud), each site started by
``realrl train --site`` in its own network namespace, joined by a veth shaped to
100 Mbit/s (tbf) with 25 ms added each way by the delaying relay in the edge namespace
(``realrl_bridge.wan.WanLink``), over mutual TLS. Baseline, in the same run, just before:
``config/reach_sim.yaml`` (the same nodes, no bridge) in one namespace: the same host.

- ``episode_s_same_host``, ``episode_s_cloud_edge``: the time of a full-length episode
  (``episode_max_steps`` steps), ``episode_start_s + episode_max_steps * episode_step_s``,
  fitted (Theil-Sen) to the seconds and steps of the episodes the edge run recorded after
  the first ``warmup_s``: ``episode_start_s`` is what an episode costs besides its steps
  (the reset tick; across the link also the first step's wait for a whole round trip, as no
  answer for a new episode exists before it), ``episode_step_s`` a step. ``ratio``:
  cloud-edge / same host. The learner learns meanwhile, so most episodes end early in a
  success (a median of ~5 steps in a full run): the old figure, 50 x the median seconds per
  step (``ratio_per_step_median``), charged a 50-step episode with ten episode starts and
  so followed how fast that run happened to learn (0.87-1.41 in six runs of one day).
- ``send_obs_s``: median age of an observation when it reaches the policy's graph (driver
  stamp to arrival, the same host clock); ``send_action_s``: median age of an action when it
  (or chunk) reaches the driver's graph (policy stamp to arrival). Same-host figures are
  printed too. ``round_trip_p50_s``/``_p99_s``: from the driver's stamp of an observation
  to the first answer to it at the driver's graph; ``late_fraction``: the share of those
  longer than ``hold_rows`` periods (its step then holds).
The driver applies the action of observation t at tick t+1: a step waits for the round
trip, so with a round trip near the control period (50 ms at 20 Hz) the cloud-edge step
took about two periods (ratio 1.92). The policy therefore answers with chunks of its action
held for ``--hold-rows`` steps (both runs, the graph's setting: 2): a step whose answer is
late runs on the previous observation's answer, checked by the driver's guard like any
action. ``steps_ahead`` is the fraction of the edge driver's steps that did so (its
``chunk_steps_ahead`` counter over its steps; the same host's too): the price, at most
hold_rows - 1 periods of staleness each; ``held_for_action``: ticks the driver held for an
answer, per step taken (the whole run: the start-up, before the cloud answers, included).
``--hold-rows 1`` gives the old pipeline (no chunks).
Both runs hold ``host.cpu_wake_latency_us`` at ``--cpu-wake-latency-us`` (0, the cloud-edge
graphs' setting: idle CPUs poll, realrl_common.scheduling.CpuWakeLatency); ``-1`` leaves the
machine's idle states alone. On an idle virtual machine whose idle CPUs halt, each of a
step's dozen hand-overs between processes then waits for the host to wake a CPU: the round
trip's p50 was 95-106 ms instead of 68 ms and the ratio 1.57-1.91 (quick runs); a loaded
machine, whose CPUs are never idle, hides this (the 1.02 of the first runs).
``--control-hz 10`` (100 ms period) shows the same graph where the round trip fits in a
period. ``--edge-policy`` splits ``config/reach_edge_policy.yaml`` instead: the policy at
the edge, the learner's weights crossing the link (``weights_version_at_edge``: the newest
version the edge bridge logged handing to its policy; its log is throttled to every 10 s),
no chunks on either run. Left out: policy inference time alone, learning speed (the return
of a policy acting one period late is not measured here), more than one robot. Needs root.

    .venv/bin/python bench/cloud_edge.py [--quick] [--control-hz HZ] [--hold-rows N]
                                         [--edge-policy] [--cpu-wake-latency-us US]
"""
from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _util
import yaml
from link_cut import GRAPH, PORT, site_graph

from realrl_bridge import certs, wan

SAME_HOST = _util.ROOT / 'config' / 'reach_sim.yaml'
EDGE_POLICY = _util.ROOT / 'config' / 'reach_edge_policy.yaml'
SPLIT = [GRAPH]
"""The cloud-edge graph: reach_cloud_edge.yaml, or reach_edge_policy.yaml (--edge-policy)."""


def episode_times(episodes: Path, warmup_s: float) -> list[tuple[int, float]]:
    """(steps, seconds) of each episode logged after warmup_s (from the previous one's log
    line to its own: its steps, its start and its reset)."""
    rows = [json.loads(line) for line in episodes.read_text().splitlines()] \
        if episodes.exists() else []
    return [(b['steps'], b['time_s'] - a['time_s']) for a, b in zip(rows, rows[1:])
            if a['time_s'] >= warmup_s and b['steps'] > 0]


def per_step_s(times: list[tuple[int, float]]) -> float:
    """The old estimate: the median of seconds / steps over the episodes."""
    return statistics.median(t / n for n, t in times) if times else float('nan')


def episode_fit(times: list[tuple[int, float]]) -> tuple[float, float]:
    """Seconds per episode = start + per_step * steps, fitted robustly (Theil-Sen: the
    median of the slopes between episodes of different lengths, then the median
    intercept); (start_s, per_step_s). With one length only: (0, the median per step)."""
    slopes = [(tb - ta) / (nb - na) for i, (na, ta) in enumerate(times)
              for nb, tb in times[i + 1:] if nb != na]
    if not slopes:
        return 0.0, per_step_s(times)
    slope = statistics.median(slopes)
    return statistics.median(t - slope * n for n, t in times), slope


def driver_counters(work: Path, tag: str) -> dict:
    """The driver's counters (logged when it stops): steps, chunk_steps_ahead, waiting_*."""
    for path in sorted((work / tag).rglob('*.log')) + sorted(work.glob(f'{tag}*.log')):
        for line in path.read_text(errors='replace').splitlines():
            if 'counters: {' in line and '"steps"' in line and 'driver' in line:
                return json.loads(line.split('counters: ', 1)[1].split('}', 1)[0] + '}')
    return {}


def per_driver_step(counters: dict, key: str) -> float:
    """counters[key] / counters['steps'] (nan without counters)."""
    if not counters.get('steps'):
        return float('nan')
    return counters.get(key, 0) / counters['steps']


def records(path: Path) -> list[list]:
    """A probe's [receive time, stamp, episode_id, step] per message."""
    return json.loads(path.read_text()) if path.exists() else []


def ages(rows: list[list]) -> list[float]:
    """Each message's age on arrival (receive time - stamp)."""
    return [r[0] - r[1] for r in rows]


def round_trips(obs: list[list], answers: list[list]) -> list[float]:
    """Per answered observation: from the driver's stamp of its first copy to the first
    answer to it (episode_id, step) reaching the driver's graph."""
    sent, answered = {}, {}
    for recv, stamp, ep, step in obs:
        sent.setdefault((ep, step), stamp)
    for recv, _, ep, step in answers:
        answered.setdefault((ep, step), recv)
    return sorted(answered[k] - sent[k] for k in answered.keys() & sent.keys())


ACTION_TOPIC = ['action_chunk']
"""Where the policy's answers go (action_chunk, or action with --hold-rows 1)."""
OVERRIDES: list[str] = []
"""--set overrides of both runs (the driver's rate, chunks, the machines' CPU wake-up)."""
CONTROL_HZ_VALUE, HOLD_ROWS = [20.0], [2]
"""The driver's rate and the chunks' rows of this run (the round trip's budget)."""


def run_site(procs: list, ns: str, graph: Path, site: str, run_dir: Path, dom: int,
             log: Path) -> None:
    cmd = ['ip', 'netns', 'exec', ns, str(_util.REALRL), 'train', '--config', str(graph),
           '--run-dir', str(run_dir), '--no-stop-at-success', '--max-wall-s', '3600',
           *OVERRIDES]
    procs.append(_util.start_process(cmd + (['--site', site] if site else []),
                                     _util.bench_env(dom), log))


def probe(procs: list, ns: str, topic: str, out: Path, dom: int, log: Path) -> None:
    procs.append(_util.start_process(
        ['ip', 'netns', 'exec', ns, sys.executable,
         str(_util.ROOT / 'bench' / '_latency_probe.py'), topic, str(out)],
        _util.bench_env(dom), log))


def measure(work: Path, link: wan.WanLink, cloud_edge: bool, seconds: float,
            domain: int) -> dict:
    """One run (same host in the cloud namespace, or split across both); its figures."""
    tag = 'cloud_edge' if cloud_edge else 'same_host'
    procs: list = []
    try:
        if cloud_edge:
            folder = certs.make_folder(work / 'certs', ['lab_a', 'cloud'],
                                       (link.cloud_ip, '127.0.0.1'))
            proxy = link.delay_proxy(PORT)
            graph = site_graph(folder, link.cloud_ip, work / 'graph.yaml',
                               edge_connect=f'tls/127.0.0.1:{proxy}', graph=SPLIT[0])
            run_site(procs, link.cloud_ns, graph, 'cloud', work / tag / 'cloud', domain,
                     work / f'{tag}_cloud.log')
            run_site(procs, link.edge_ns, graph, 'lab_a', work / tag / 'lab_a', domain + 1,
                     work / f'{tag}_edge.log')
            edge_dir, obs_at, act_at = work / tag / 'lab_a', (link.cloud_ns, domain), \
                (link.edge_ns, domain + 1)
            if SPLIT[0] == EDGE_POLICY:   # observations and actions stay at the edge
                obs_at = act_at
        else:
            run_site(procs, link.cloud_ns, SAME_HOST, '', work / tag, domain + 2,
                     work / f'{tag}.log')
            edge_dir, obs_at, act_at = work / tag, (link.cloud_ns, domain + 2), \
                (link.cloud_ns, domain + 2)
        probe(procs, obs_at[0], 'observation', work / f'{tag}_obs.json', obs_at[1],
              work / f'{tag}_obs.log')
        probe(procs, act_at[0], ACTION_TOPIC[0], work / f'{tag}_act.json', act_at[1],
              work / f'{tag}_act.log')
        time.sleep(seconds)
    finally:
        for p in reversed(procs):
            _util.stop_process(p, 20)
    steps = yaml.safe_load(SAME_HOST.read_text())['nodes'][-1]['parameters']
    versions = [int(v) for path in sorted((work / tag).rglob('*.log')) for v in re.findall(
        r'weights v(\d+) from the cloud published', path.read_text(errors='replace'))]
    counters = driver_counters(work, tag)
    print(f'{tag} driver counters: {json.dumps(counters)}')
    times = episode_times(edge_dir / 'metrics' / 'episodes.jsonl', 20.0)
    start_s, step_s = episode_fit(times)
    obs, act = records(work / f'{tag}_obs.json'), records(work / f'{tag}_act.json')
    trips = round_trips(obs, act)
    budget = HOLD_ROWS[0] / (CONTROL_HZ_VALUE[0])
    late = sum(t > budget for t in trips) / len(trips) if trips else float('nan')
    print(f'{tag} round trip (observation stamp -> its answer at the driver): ' + ', '.join(
        f'p{q} {_util.percentile(trips, q) * 1e3:.1f} ms' for q in (50, 90, 99)) +
        f'; {late:.1%} later than hold_rows periods ({budget * 1e3:.0f} ms)' if trips else
        f'{tag}: no round trips recorded')
    return {'weights_version_at_edge': max(versions, default=0),
            'steps_ahead': per_driver_step(counters, 'chunk_steps_ahead'),
            'held_for_action': per_driver_step(counters, 'waiting_action'),
            'episode_s': start_s + step_s * steps['episode_max_steps'],
            'episode_start_s': start_s, 'episode_step_s': step_s,
            'episode_steps_median': statistics.median(n for n, _ in times) if times
            else float('nan'),
            'episode_s_per_step_median': per_step_s(times) * steps['episode_max_steps'],
            'send_obs_s': statistics.median(ages(obs) or [float('nan')]),
            'send_action_s': statistics.median(ages(act) or [float('nan')]),
            'round_trip_p50_s': _util.percentile(trips, 50) if trips else float('nan'),
            'round_trip_p99_s': _util.percentile(trips, 99) if trips else float('nan'),
            'late_fraction': late}


def main() -> None:
    def options(p):
        p.add_argument('--control-hz', type=float, help="the driver's rate (the graphs': 20)")
        p.add_argument('--hold-rows', type=int, default=2,
                       help='rows of the held action per chunk, both runs (1: no chunks)')
        p.add_argument('--edge-policy', action='store_true',
                       help='split run: config/reach_edge_policy.yaml (policy at the edge, '
                            'weights over the link)')
        p.add_argument('--cpu-wake-latency-us', type=int, default=0,
                       help="both runs' host.cpu_wake_latency_us (0, the cloud-edge graphs' "
                            "setting: idle CPUs poll; -1: the machine's own idle states)")
    args = _util.parse(__doc__.split('\n')[0], options)
    _util.require_workspace()
    CONTROL_HZ_VALUE[0], HOLD_ROWS[0] = args.control_hz or 20.0, max(1, args.hold_rows)
    if args.control_hz:
        OVERRIDES.extend(['--set', f'driver.control_hz={args.control_hz}'])
    if args.edge_policy:
        SPLIT[0], args.hold_rows = EDGE_POLICY, 1
    ACTION_TOPIC[0] = 'action_chunk' if args.hold_rows > 1 else 'action'
    wake = None if args.cpu_wake_latency_us < 0 else args.cpu_wake_latency_us
    OVERRIDES.extend(['--set', f'host.cpu_wake_latency_us={"null" if wake is None else wake}'])
    OVERRIDES.extend(['--set', 'policy.chunks=' + ('overlap' if args.hold_rows > 1 else "'off'"),
                       '--set', f'policy.hold_rows={max(1, args.hold_rows)}'])
    reason = wan.available()
    if reason:
        sys.exit(f'bench: {reason}')
    seconds = 60.0 if args.quick else 150.0
    domain = int(_util.bench_env(180)['ROS_DOMAIN_ID'])
    with tempfile.TemporaryDirectory(prefix='cloud_edge_') as tmp, \
            wan.WanLink(rate_mbit=100, rtt_ms=50, name='rrce', subnet='10.213.7') as link:
        same = measure(Path(tmp), link, False, seconds, domain)
        split = measure(Path(tmp), link, True, seconds, domain)
    print(f"same host:  episode {same['episode_s']:.2f} s, observation "
          f"{same['send_obs_s'] * 1e3:.1f} ms, action {same['send_action_s'] * 1e3:.1f} ms")
    print(f"cloud-edge: episode {split['episode_s']:.2f} s, observation "
          f"{split['send_obs_s'] * 1e3:.1f} ms, action {split['send_action_s'] * 1e3:.1f} ms "
          f"(50 ms RTT, 100 Mbit/s)")
    _util.emit({'episode_s_same_host': round(same['episode_s'], 3),
                'episode_s_cloud_edge': round(split['episode_s'], 3),
                'ratio': round(split['episode_s'] / same['episode_s'], 3),
                'episode_start_s_same_host': round(same['episode_start_s'], 4),
                'episode_start_s_cloud_edge': round(split['episode_start_s'], 4),
                'episode_step_s_same_host': round(same['episode_step_s'], 4),
                'episode_step_s_cloud_edge': round(split['episode_step_s'], 4),
                'episode_steps_median_same_host': same['episode_steps_median'],
                'episode_steps_median_cloud_edge': split['episode_steps_median'],
                'ratio_per_step_median': round(split['episode_s_per_step_median'] /
                                               same['episode_s_per_step_median'], 3),
                'send_obs_s': round(split['send_obs_s'], 4),
                'send_action_s': round(split['send_action_s'], 4),
                'send_obs_s_same_host': round(same['send_obs_s'], 4),
                'send_action_s_same_host': round(same['send_action_s'], 4),
                'round_trip_p50_s': round(split['round_trip_p50_s'], 4),
                'round_trip_p99_s': round(split['round_trip_p99_s'], 4),
                'late_fraction': round(split['late_fraction'], 3),
                'round_trip_p50_s_same_host': round(same['round_trip_p50_s'], 4),
                'steps_ahead': round(split['steps_ahead'], 3),
                'held_for_action': round(split['held_for_action'], 3),
                'held_for_action_same_host': round(same['held_for_action'], 3),
                'steps_ahead_same_host': round(same['steps_ahead'], 3),
                'hold_rows': args.hold_rows, 'control_hz': args.control_hz or 20.0,
                'edge_policy': args.edge_policy,
                'cpu_wake_latency_us': wake,
                'weights_version_at_edge': split['weights_version_at_edge']})


if __name__ == '__main__':
    main()
