"""Asynchronous vs synchronous training: wall-clock time to success.

`--task reach` (default): the reach demo (state only, config/reach_sim.yaml), SAC.
`--task peg`: peg insertion from pixels (config/peg_sim.yaml: front and wrist cameras at
32x32, image RLPD with 20 scripted demonstrations, recorded first, once for all runs).
Either through `realrl train`, the whole ROS 2 graph, its driver paced at 10 Hz, until 90 %
of the last 20 episodes succeed. Both modes use the same algorithm, the same UTD ratio and
the same seeds; they differ only in who waits:

- async (the baseline, today's default): robots collect while the learner trains;
- sync (`--set mode=sync`, the graph's one switch): after each episode the robot waits
  until the learner has made UTD x (new finished steps) updates and published new weights.

Figures: time to success per mode (median of 3 seeds with --full, 1 seed with a time cap
with --quick), speedup = sync / async, and from the sync run the ideal overlap bound
(T_env + T_train) / max(T_env, T_train), with T_train the seconds the learner spent in its
sync rounds (the robots' wait) and T_env the rest of the run. gen_period_s: seconds of
collection per episode; train_period_s: seconds between published weights versions.

Left out: with --task reach, images. Time to success is the run's `run_time_s`, which includes
the nodes' start-up (a few seconds, alike in both modes, and in sync's T_env). On a shared
2-core machine training and collection compete for the CPU, so async's overlap is smaller
than on separate machines.
"""
import json
import statistics
import tempfile
from pathlib import Path

from _util import bench_env, emit, parse, require_workspace, run_realrl

MODES = {'async': ['--set', 'mode=async'], 'sync': ['--set', 'mode=sync']}


def last_metrics(run_dir: Path) -> dict:
    path = run_dir / 'metrics' / 'learner.jsonl'
    lines = path.read_text().splitlines() if path.exists() else []
    return json.loads(lines[-1]) if lines else {}


def task_args(task: str, tmp: Path) -> list[str]:
    """`realrl train` arguments that pick the task's graph ([] for the reach demo's)."""
    if task == 'reach':
        return []
    from peg_insertion import graph_for, record
    demos = record(tmp / 'demos')
    print(f"peg: {demos['episodes']} demonstrations recorded ({demos['successes']} "
          f"successful)", flush=True)
    return ['--config', str(graph_for('rlpd', tmp / 'demos', tmp / 'peg.yaml'))]


def one_run(mode: str, seed: int, tmp: Path, cap_s: float, domain: int,
            graph: list[str]) -> dict:
    run_dir = tmp / f'{mode}{seed}'
    args = ['train', *graph, '--run-dir', str(run_dir), '--max-wall-s', str(cap_s),
            '--set', 'driver.control_hz=10.0', '--set', f'driver.seed={seed * 1000}',
            '--set', f'learner.seed={seed}', '--set', f'policy.seed={seed}',
            '--set', 'learner.metrics_every_s=1.0', *MODES[mode]]
    code = run_realrl(args, bench_env(domain), tmp / f'{mode}{seed}.log', timeout_s=cap_s + 120)
    s = json.loads((run_dir / 'summary.json').read_text())
    ok = code == 0 and s['outcome'] == 'success'
    wall = s['run_time_s']
    m = last_metrics(run_dir)
    train_s = float(m.get('sync_train_s', 0.0))
    rounds = int(m.get('sync_rounds', 0))
    env_s = wall - train_s if mode == 'sync' else wall
    out = {'mode': mode, 'seed': seed, 'outcome': s['outcome'],
           'time_to_success_s': wall if ok else float('inf'), 'wall_s': wall,
           'episodes': s['episodes'], 'steps': s['steps'], 'updates': s['learner_updates'],
           'versions': s['policy_version'], 'train_s': train_s, 'env_s': env_s,
           'gen_period_s': env_s / max(1, s['episodes']),
           'train_period_s': (train_s / max(1, rounds) if mode == 'sync'
                              else wall / max(1, s['policy_version']))}
    print(f"{mode} seed {seed}: {s['outcome']} after {wall:.1f} s, {s['steps']} steps, "
          f"{s['episodes']} episodes, {s['learner_updates']} updates, v{s['policy_version']}"
          + (f', training {train_s:.1f} s in {rounds} rounds' if mode == 'sync' else ''),
          flush=True)
    return out


def main():
    args = parse(__doc__, lambda p: (p.add_argument('--full', action='store_true'),
                                     p.add_argument('--cap-s', type=float, default=None),
                                     p.add_argument('--task', choices=('reach', 'peg'),
                                                    default='reach')))
    require_workspace()
    seeds = [0, 1, 2] if args.full else [0]
    cap = args.cap_s or (900.0 if args.full else 420.0)
    runs = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix='realrl-bench-sync-') as tmp:
        graph = task_args(args.task, Path(tmp))
        for i, seed in enumerate(seeds):
            for j, mode in enumerate(MODES):  # alternate, so load drifts hit both alike
                runs[mode].append(one_run(mode, seed, Path(tmp), cap, 20 + 2 * i + j, graph))
    med = {mode: {k: statistics.median(r[k] for r in rs)
                  for k in ('time_to_success_s', 'gen_period_s', 'train_period_s', 'train_s',
                            'env_s')} for mode, rs in runs.items()}
    t_env, t_train = med['sync']['env_s'], med['sync']['train_s']
    bound = (t_env + t_train) / max(t_env, t_train) if max(t_env, t_train) > 0 else 1.0
    a, s = med['async']['time_to_success_s'], med['sync']['time_to_success_s']
    speedup = s / a if a > 0 else float('nan')
    print(f'time to success: async {a:.1f} s (baseline), sync {s:.1f} s, speedup {speedup:.2f} '
          f'(bound from the sync run: {bound:.2f}, T_env {t_env:.1f} s, T_train {t_train:.1f} s)')
    r = lambda x: round(x, 3) if x != float('inf') else None  # noqa: E731
    emit({'async_time_to_success_s': r(a), 'sync_time_to_success_s': r(s),
          'speedup': r(speedup), 'bound': r(bound),
          'async_gen_period_s': r(med['async']['gen_period_s']),
          'async_train_period_s': r(med['async']['train_period_s']),
          'sync_gen_period_s': r(med['sync']['gen_period_s']),
          'sync_train_period_s': r(med['sync']['train_period_s']),
          'task': args.task, 'seeds': seeds, 'runs': [{k: (r(v) if isinstance(v, float) else v)
                                    for k, v in x.items()} for rs in runs.values() for x in rs]})


if __name__ == '__main__':
    main()
