"""Weight-sync interval ablation: the learner publishes weights every 1, 8, 32 or 128 updates.

The reach demo (config/reach_sim.yaml) through `realrl train`, the whole ROS 2 graph, its
driver paced at 10 Hz, async mode, one run per interval with the same seeds; everything but
`learner.publish_every_updates` is the demo's. A run ends at 90 % success over the last 20
episodes or at the cap. The paper (RLinf-USER) found 1 and 8 updates unstable and used 32.

Figures, per interval: `time_to_success_s` (null if the cap came first), `episodes`,
`versions` (weights versions published), and `curve`: the success rate of the last 20
episodes after every 5th episode, as [minutes, rate]. The baseline is interval 32, the
paper's choice and ours in config/peg_sim.yaml; `ratio_to_32` = time / time at 32.

Left out: state-only reach, not pixels; one seed per interval unless --seeds; the runs are
sequential (alternating order across seeds), so drifting load on a shared machine reaches
them unequally; each interval's time includes the graph's start-up (a few seconds).
"""
import json
import statistics
import tempfile
from pathlib import Path

from _util import bench_env, emit, parse, require_workspace, run_realrl

INTERVALS = (1, 8, 32, 128)
WINDOW = 20


def success_curve(episodes: list[dict], every: int = 5) -> list[list[float]]:
    """[minutes, success rate of the last WINDOW episodes] after every `every` episodes."""
    out = []
    for i in range(every, len(episodes) + 1, every):
        last = episodes[max(0, i - WINDOW):i]
        rate = sum(bool(e.get('success')) for e in last) / len(last)
        out.append([round(float(episodes[i - 1]['time_s']) / 60, 2), round(rate, 2)])
    return out


def one_run(interval: int, seed: int, tmp: Path, cap_s: float, domain: int) -> dict:
    run_dir = tmp / f'every{interval}_seed{seed}'
    args = ['train', '--run-dir', str(run_dir), '--max-wall-s', str(cap_s),
            '--set', 'driver.control_hz=10.0', '--set', f'driver.seed={seed * 1000}',
            '--set', f'learner.seed={seed}', '--set', f'policy.seed={seed}',
            '--set', f'learner.publish_every_updates={interval}']
    code = run_realrl(args, bench_env(domain), tmp / f'every{interval}_{seed}.log',
                      timeout_s=cap_s + 120)
    s = json.loads((run_dir / 'summary.json').read_text())
    path = run_dir / 'metrics' / 'episodes.jsonl'
    episodes = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    ok = code == 0 and s['outcome'] == 'success'
    print(f"every {interval:>3} updates, seed {seed}: {s['outcome']} after "
          f"{s['run_time_s']:.1f} s, {s['episodes']} episodes, {s['learner_updates']} updates, "
          f"v{s['policy_version']}", flush=True)
    return {'interval': interval, 'seed': seed, 'outcome': s['outcome'],
            'time_to_success_s': s['run_time_s'] if ok else None,
            'episodes': s['episodes'], 'updates': s['learner_updates'],
            'versions': s['policy_version'], 'curve': success_curve(episodes)}


def main():
    args = parse(__doc__, lambda p: (p.add_argument('--seeds', type=int, default=1),
                                     p.add_argument('--cap-s', type=float, default=420.0)))
    require_workspace()
    runs: dict[int, list[dict]] = {i: [] for i in INTERVALS}
    with tempfile.TemporaryDirectory(prefix='realrl-bench-interval-') as tmp:
        for seed in range(args.seeds):
            order = INTERVALS if seed % 2 == 0 else INTERVALS[::-1]
            for interval in order:
                runs[interval].append(one_run(interval, seed, Path(tmp), args.cap_s,
                                              150 + 4 * seed + INTERVALS.index(interval)))

    def median_time(rs):  # a run that never got there counts as the cap
        return statistics.median(r['time_to_success_s'] or args.cap_s for r in rs)

    base = median_time(runs[32])
    result = {}
    for interval, rs in runs.items():
        t = median_time(rs)
        result[str(interval)] = {
            'time_to_success_s': round(t, 1) if any(r['time_to_success_s'] for r in rs) else None,
            'successes': sum(r['time_to_success_s'] is not None for r in rs), 'runs': len(rs),
            'ratio_to_32': round(t / base, 3), 'versions': [r['versions'] for r in rs],
            'episodes': [r['episodes'] for r in rs], 'curve': rs[0]['curve']}
        print(f'every {interval:>3}: median time {t:.1f} s (x{t / base:.2f} of every 32), '
              f'curve {rs[0]["curve"]}')
    emit({'intervals': result, 'cap_s': args.cap_s, 'seeds': args.seeds})


if __name__ == '__main__':
    main()
