"""How well the driver keeps its 10 Hz control period while the learner trains flat out.

The demo graph runs with the driver at 10 Hz logging every tick time (and which ticks held),
and the learner's UTD cap lifted (learner.sac.updates_per_step=1000, learning_starts=50) so
it trains as fast as it can on the same cores. Period error = |actual period - 0.1 s| / 0.1 s
over all ticks after the driver's first 5 s.

Two passes, one after the other: the graph as configured (the driver at nice -5, normal
scheduling), and again with the driver's control thread at SCHED_FIFO priority 20
(driver.realtime_priority=20). What each control thread actually got is read back from
/proc/<tid>/stat while the graph runs, not assumed.

Baselines:
- concurrent (the comparison that matters): a bare rclpy timer at 10 Hz in a process of its
  own, started with the graph and run for the same window, at the same scheduling as the
  driver's control thread in that pass (nice -5, or SCHED_FIFO 20), so it sees the same load;
- idle: the same bare timer at nice 0 before the graph starts (the machine's own noise).

Held ticks: ticks in which the driver held because the action or the label for the current
observation was late; the clock ticked on time but nothing was applied. They are counted
apart from the on-time ticks that applied an action, and included in the period error.

Left out: the error of the tick's work (apply, render, publish) after the timer fired, and
DDS latency to the policy; the other helpers' load on the machine is whatever it is, the same
for the graph and the concurrent baseline.
"""
import json
import re
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
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

HZ = 10.0
WARMUP_S = 5.0
REALTIME_PRIORITY = 20
DRIVER_NICE = -5  # the driver's default `nice`
REALRL = ROOT / '.venv' / 'bin' / 'realrl'
BARE_TIMER = textwrap.dedent('''
    import json, os, sys, time, rclpy
    from rclpy.executors import ExternalShutdownException
    from realrl_common.scheduling import thread_scheduling
    hz, out, seconds, rt, nice = (float(sys.argv[1]), sys.argv[2], float(sys.argv[3]),
                                  int(sys.argv[4]), int(sys.argv[5]))
    rclpy.init()
    node = rclpy.create_node('bare_timer')
    refused = []
    try:  # this thread only, after the DDS threads exist: as the driver does it
        if rt:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt))
        if nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    except PermissionError as e:
        refused.append(str(e))
    stamps = []
    node.create_timer(1.0 / hz, lambda: stamps.append(time.monotonic()))
    end = time.monotonic() + seconds
    try:
        while rclpy.ok() and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        with open(out, 'w') as f:
            json.dump({'stamps': stamps, 'scheduling': thread_scheduling(),
                       'refused': refused}, f)
''')
SCHED_LINE = re.compile(r'control thread (\d+) of (\w+): (\S+) priority (\d+), nice (-?\d+)')


def errors(stamps, warmup_s=WARMUP_S):
    """Period errors of the ticks after the first warmup_s."""
    stamps = np.asarray(stamps)
    stamps = stamps[stamps >= stamps[0] + warmup_s]
    return np.abs(np.diff(stamps) - 1.0 / HZ) * HZ


def figure(value) -> float | None:
    """A figure for the result line, rounded; None if it could not be measured."""
    return None if value is None or not np.isfinite(value) else round(float(value), 5)


def window_errors(stamps, start: float, end: float) -> np.ndarray:
    """Period errors of the ticks that fell in [start, end]."""
    stamps = np.asarray(stamps)
    stamps = stamps[(stamps >= start) & (stamps <= end)]
    return np.abs(np.diff(stamps) - 1.0 / HZ) * HZ


def start_bare_timer(env: dict, out: Path, log: Path, seconds: float, rt: int = 0,
                     nice: int = 0):
    """A bare rclpy timer at HZ in a process of its own, at the given scheduling."""
    env = dict(env, PYTHONPATH=f'{ROOT / "src/realrl_driver"}:{env.get("PYTHONPATH", "")}')
    return start_process([str(ROOT / '.venv/bin/python'), '-c', BARE_TIMER, str(HZ), str(out),
                          str(seconds), str(rt), str(nice)], env, log)


def read_bare_timer(out: Path) -> dict:
    return json.loads(out.read_text())


def bare_timer_errors(env: dict, seconds: float, workdir: Path) -> np.ndarray:
    """The idle baseline: the bare timer alone, at nice 0, before the graph starts (its
    first second left out)."""
    out = workdir / 'idle_timer.json'
    p = start_bare_timer(env, out, workdir / 'idle_timer.log', seconds)
    p.wait(seconds + 60)
    stop_process(p)
    base = errors(read_bare_timer(out)['stamps'], warmup_s=1.0)
    print(f'idle baseline, bare rclpy timer alone at nice 0: p50 {100 * np.median(base):.2f} %, '
          f'p99 {100 * percentile(base, 99):.2f} % ({len(base)} periods)', flush=True)
    return base


def driver_scheduling(log_dir: Path, live: bool) -> dict:
    """{robot_id: scheduling} of each driver's control thread that has logged its tid: read
    back from /proc/<tid>/stat while the drivers run (live), else the driver's own report
    (after they ended, a tid may belong to another thread)."""
    from realrl_common.scheduling import thread_scheduling
    found = {}
    for log in sorted(log_dir.glob('*.log')) if log_dir.is_dir() else []:
        m = SCHED_LINE.search(log.read_text(errors='replace'))
        if m:
            tid, rid = int(m.group(1)), m.group(2)
            found[rid] = {'tid': tid, 'policy': m.group(3), 'rt_priority': int(m.group(4)),
                          'nice': int(m.group(5)), 'read_from': 'driver log'}
            if live:
                try:
                    found[rid] = dict(thread_scheduling(tid), read_from='/proc')
                except FileNotFoundError:  # it ended just now: keep its own report
                    pass
    return found


def run_graph_with_baseline(args: list[str], env: dict, workdir: Path, duration: float,
                            rt: int, robots: int) -> dict:
    """Run `realrl train` (args) to its time limit with the bare timer running alongside at
    the driver's scheduling (SCHED_FIFO rt, else nice DRIVER_NICE). Returns the bare timer's
    record and the drivers' scheduling read back while the graph ran."""
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = workdir / 'run'
    graph = start_process([str(REALRL), 'train', '--run-dir', str(run_dir), *args,
                           '--no-stop-at-success', '--max-wall-s', str(duration)],
                          env, workdir / 'train.log')
    timer_out = workdir / 'bare_timer.json'
    timer = start_bare_timer(env, timer_out, workdir / 'bare_timer.log', duration + 120,
                             rt=rt, nice=0 if rt else DRIVER_NICE)
    sched, deadline = {}, time.monotonic() + duration + 120
    try:
        while graph.poll() is None and time.monotonic() < deadline:
            time.sleep(1.0)
            if len(sched) < robots:  # read while the threads live
                sched.update({k: v for k, v in driver_scheduling(run_dir / 'logs', True).items()
                              if k not in sched})
    finally:
        stop_process(graph, grace_s=60.0)
        stop_process(timer)
    sched.update({k: v for k, v in driver_scheduling(run_dir / 'logs', False).items()
                  if k not in sched})
    return {'timer': read_bare_timer(timer_out), 'drivers': sched, 'run_dir': run_dir}


def learner_rate(run_dir: Path) -> float:
    metrics = run_dir / 'metrics/learner.jsonl'
    if not metrics.exists():
        return 0.0
    learner = [json.loads(x) for x in metrics.read_text().splitlines()]
    trained = [r for r in learner if r['updates'] > 0]
    if len(trained) < 2:
        return 0.0
    return ((trained[-1]['updates'] - trained[0]['updates']) /
            max(1e-9, trained[-1]['time_s'] - trained[0]['time_s']))


def granted(rt: int, got: dict) -> bool:
    """Whether a thread got this pass's scheduling: SCHED_FIFO rt, or nice DRIVER_NICE."""
    if rt:
        return got['policy'] == 'SCHED_FIFO' and got['rt_priority'] == rt
    return got['policy'] == 'SCHED_OTHER' and got['nice'] == DRIVER_NICE


def robot_figures(tick_log: Path) -> dict:
    """Period errors and held ticks of one driver over its ticks after WARMUP_S."""
    from realrl_driver.core.clock_stats import read_held_ticks, read_tick_log
    stamps = np.asarray(read_tick_log(str(tick_log)))
    start, end = stamps[0] + WARMUP_S, stamps[-1]
    err = window_errors(stamps, start, end)
    held = [t for t in read_held_ticks(str(tick_log)) if start <= t <= end]
    ticks = int(np.count_nonzero(stamps >= start))
    return {'p50': round(float(np.median(err)), 5), 'p99': round(percentile(err, 99), 5),
            'max': round(float(err.max()), 5), 'periods': int(len(err)), 'ticks': ticks,
            'held_ticks': len(held), 'on_time_ticks': ticks - len(held),
            'window': (float(start), float(end)), 'errors': err}


def pass_figures(name: str, rt: int, result: dict, tick_logs: dict) -> dict:
    """One pass: every robot's figures, the concurrent baseline over the same window, and
    the scheduling every thread got."""
    robots = {rid: robot_figures(path) for rid, path in tick_logs.items()}
    start = min(r['window'][0] for r in robots.values())
    end = max(r['window'][1] for r in robots.values())
    base = window_errors(result['timer']['stamps'], start, end)
    timer_sched = result['timer']['scheduling']
    drivers = result['drivers']
    ok = bool(drivers) and len(drivers) == len(robots) and \
        all(granted(rt, s) for s in drivers.values()) and granted(rt, timer_sched)
    fig = {
        'scheduling': f'SCHED_FIFO {rt}' if rt else f'nice {DRIVER_NICE}',
        'priority_granted': ok,
        'driver_threads': {rid: {k: s[k] for k in ('policy', 'rt_priority', 'nice', 'read_from')}
                           for rid, s in drivers.items()},
        'baseline_thread': {k: timer_sched[k] for k in ('policy', 'rt_priority', 'nice')},
        'period_error_p50': max(r['p50'] for r in robots.values()),
        'period_error_p99': max(r['p99'] for r in robots.values()),
        'periods': sum(r['periods'] for r in robots.values()),
        'held_ticks': sum(r['held_ticks'] for r in robots.values()),
        'on_time_ticks': sum(r['on_time_ticks'] for r in robots.values()),
        'baseline_concurrent_p50': figure(np.median(base) if len(base) else None),
        'baseline_concurrent_p99': figure(percentile(base, 99)),
        'baseline_periods': int(len(base)),
        'learner_updates_per_s': round(learner_rate(result['run_dir']), 1),
        'per_robot': {rid: {k: v for k, v in r.items() if k not in ('errors', 'window')}
                      for rid, r in robots.items()},
    }
    for rid, r in robots.items():
        print(f'[{name}] {rid} at {HZ:g} Hz: p50 {100 * r["p50"]:.2f} %, '
              f'p99 {100 * r["p99"]:.2f} %, max {100 * r["max"]:.2f} % ({r["periods"]} periods; '
              f'{r["held_ticks"]} of {r["ticks"]} ticks held for a late action or label)')
    b50, b99 = (np.nan if x is None else x for x in (fig['baseline_concurrent_p50'],
                                                       fig['baseline_concurrent_p99']))
    print(f'[{name}] concurrent baseline, bare timer at {fig["scheduling"]} over the same '
          f'{end - start:.0f} s: p50 {100 * b50:.2f} %, p99 {100 * b99:.2f} % '
          f'({len(base)} periods)')
    print(f'[{name}] scheduling read back: drivers {fig["driver_threads"]}, baseline '
          f'{fig["baseline_thread"]}: {"granted" if ok else "NOT granted"}; learner at '
          f'{fig["learner_updates_per_s"]:.0f} updates/s', flush=True)
    return fig


def main():
    args = parse(__doc__)
    require_workspace()
    duration = 20.0 if args.quick else 90.0
    env = bench_env(140)
    with tempfile.TemporaryDirectory(prefix='realrl-bench-clock-') as tmp:
        tmp = Path(tmp)
        idle = bare_timer_errors(env, 6.0 if args.quick else 30.0, tmp)
        passes = {}
        for name, rt in (('normal', 0), ('realtime', REALTIME_PRIORITY)):
            work, ticks = tmp / name, tmp / name / 'ticks.jsonl'
            result = run_graph_with_baseline(
                ['--set', f'driver.control_hz={HZ}', '--set', f'driver.timing_log={ticks}',
                 '--set', f'driver.realtime_priority={rt}',
                 '--set', 'learner.sac.updates_per_step=1000',
                 '--set', 'learner.sac.learning_starts=50'], env, work, duration, rt, robots=1)
            passes[name] = pass_figures(name, rt, result, {'arm0': ticks})
    main_pass = passes['normal']  # the demo graph as configured
    print(f'driver at {HZ:g} Hz, as configured (nice {DRIVER_NICE}): p50 '
          f'{100 * main_pass["period_error_p50"]:.2f} %, p99 '
          f'{100 * main_pass["period_error_p99"]:.2f} % vs. a bare timer at the same priority '
          f'at the same time {100 * main_pass["baseline_concurrent_p99"]:.2f} %; at SCHED_FIFO '
          f'{REALTIME_PRIORITY}: p99 {100 * passes["realtime"]["period_error_p99"]:.2f} % vs. '
          f'{100 * passes["realtime"]["baseline_concurrent_p99"]:.2f} % (target p99 <= 5 %)')
    emit({'period_error_p50': main_pass['period_error_p50'],
          'period_error_p99': main_pass['period_error_p99'], 'hz': HZ,
          'periods': main_pass['periods'],
          'learner_updates_per_s': main_pass['learner_updates_per_s'],
          'baseline_bare_timer_p50': figure(np.median(idle) if len(idle) else None),
          'baseline_bare_timer_p99': figure(percentile(idle, 99)),
          'baseline_concurrent_p99': main_pass['baseline_concurrent_p99'],
          'priority_granted': {name: p['priority_granted'] for name, p in passes.items()},
          'held_ticks': main_pass['held_ticks'],
          'passes': {name: {k: v for k, v in p.items() if k != 'per_robot'}
                     for name, p in passes.items()}})


if __name__ == '__main__':
    main()
