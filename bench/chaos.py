"""Chaos during training: a random node of the demo graph SIGKILLed on a schedule.

`realrl train` runs the reach demo (config/reach_sim.yaml) with --no-stop-at-success; every
``--every-s`` seconds one of its five nodes (replay, learner, reward, policy, the arm's
driver), chosen by a seeded draw, is killed with SIGKILL and the launcher restarts it.
Afterwards:

- kills: how many; max_recovery_s: the longest time from a kill to data flowing again
  (stored rows growing by 10, and for the learner, updates growing past its count at
  restart), read from the run's 1-s status lines (so +-1 s);
- lost / duplicated: gaps and repeats in each robot's sequence numbers in the store, i.e.
  acknowledged transitions that vanished or were stored twice;
- final_success_rate: of the last 20 episodes at the end (the target is 0.9);
- orphans: node processes alive after `realrl` exited.

Baseline, in the same run and at the same time: the same graph for the same length without
kills, on a ROS domain of its own beside the chaos run (its final success rate and stored
rows), so the cost of the kills shows under the same load. (--one-after-other: the baseline
first, then the chaos run, each with the machine to itself.)
Full: 20 minutes, a kill every 60 s. --quick: 3 minutes, a kill every 30 s.
Left out: power cuts (bench/crash_states.py), kills of the launcher itself (tested in
test/system/test_orphans*), and several kills at once.
"""
import json
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _util import REALRL, ROOT, bench_env, emit, parse, require_workspace

from realrl_bringup.chaos import Chaos, run_processes, status_lines, store_invariants

FAST = ['--no-stop-at-success', '--status-every-s', '1']


def train(run_dir: Path, log: Path, env: dict, duration_s: float, every_s: float | None,
          seed: int) -> dict:
    """One run of `duration_s`, with a kill every `every_s` (None: none); its figures."""
    with open(log, 'wb') as f:
        p = subprocess.Popen([str(REALRL), 'train', '--run-dir', str(run_dir), *FAST,
                              '--max-wall-s', str(duration_s + 300)],  # not the graph's 900 s
                             stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                             start_new_session=True)
    chaos = Chaos(run_dir, log, every_s or 1e9, seed=seed)
    end = time.monotonic() + duration_s
    try:
        while time.monotonic() < end and p.poll() is None:
            status = status_lines(log.read_text(errors='replace'))
            if every_s and status:  # kills begin once the graph runs
                k = chaos.tick()
                if k:
                    print(f'  t={status[-1].t:6.1f}s SIGKILL {k.node} (pid {k.pid})', flush=True)
            time.sleep(0.5)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            code = p.wait(90)
        except subprocess.TimeoutExpired:
            subprocess.run(['kill', '-9', f'-{p.pid}'], check=False)
            code = p.wait()
    time.sleep(1.0)
    orphans = run_processes(run_dir)
    for pid in orphans:
        subprocess.run(['kill', '-9', str(pid)], check=False)
    chaos.measure()
    summary = json.loads((run_dir / 'summary.json').read_text())
    recoveries = [k.recovered_s for k in chaos.kills]
    return {'exit_code': code, 'kills': len(chaos.kills),
            'killed': [k.node for k in chaos.kills],
            'recovered': sum(r is not None for r in recoveries),
            'recovery_s': [[k.node, None if k.recovered_s is None else round(k.recovered_s, 1)]
                           for k in chaos.kills],
            'max_recovery_s': max((r for r in recoveries if r is not None), default=0.0),
            'final_success_rate': summary['final_success_rate'],
            'orphans': len(orphans), **store_invariants(run_dir / 'replay')}


def main():
    args = parse(__doc__, lambda p: (p.add_argument('--every-s', type=float),
                                     p.add_argument('--minutes', type=float),
                                     p.add_argument('--seed', type=int, default=0),
                                     p.add_argument('--one-after-other', action='store_true')))
    require_workspace()
    minutes = args.minutes or (3.0 if args.quick else 20.0)
    every_s = args.every_s or (30.0 if args.quick else 60.0)
    env = bench_env(58)
    chaos_env = dict(env, ROS_DOMAIN_ID=str(int(env['ROS_DOMAIN_ID']) + 1))
    with tempfile.TemporaryDirectory(prefix='chaos-') as tmp:
        tmp = Path(tmp)
        print(f'baseline: {minutes:g} min without kills; chaos: {minutes:g} min, a node '
              f'SIGKILLed every {every_s:g} s; '
              f'{"one after the other" if args.one_after_other else "side by side"}',
              flush=True)
        runs = [(tmp / 'calm', tmp / 'calm.log', env, minutes * 60, None, args.seed),
                (tmp / 'chaos', tmp / 'chaos.log', chaos_env, minutes * 60, every_s, args.seed)]
        if args.one_after_other:
            base, chaos = (train(*run) for run in runs)
        else:
            with ThreadPoolExecutor(2) as pool:
                base, chaos = pool.map(lambda run: train(*run), runs)
        print(f'  baseline: {base}\n  chaos: {chaos}', flush=True)
    emit({'minutes': minutes, 'every_s': every_s, 'kills': chaos['kills'],
          'recovered': chaos['recovered'], 'recovery_s': chaos['recovery_s'],
          'lost': chaos['lost'],
          'duplicated': chaos['duplicated'], 'max_recovery_s': chaos['max_recovery_s'],
          'final_success_rate': chaos['final_success_rate'], 'orphans': chaos['orphans'],
          'baseline_final_success_rate': base['final_success_rate'],
          'rows': chaos['rows'], 'baseline_rows': base['rows']})


if __name__ == '__main__':
    main()
