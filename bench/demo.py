"""Time to success of the simulated training demo (`realrl train`, the whole ROS 2 graph).

Each run starts from a fresh run folder and stops when 90 % of the last 20 episodes
succeeded. Baseline, measured in the same run: the same SAC, arm and reward in ONE
process with no ROS, no clock and no replay store (bench/_reach_learning_check.py) —
what the distributed system costs in wall time, and whether it learns from as few steps.
"""
import json
import statistics
import tempfile
from pathlib import Path

from _util import bench_env, emit, parse, require_workspace, run_realrl


def baseline(seed: int) -> dict:
    import torch
    from _reach_learning_check import run

    from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig
    from realrl_learner.sac import SACConfig
    from realrl_reward.reach_reward import ReachRewardConfig
    torch.set_num_threads(1)
    return run(seed, ArmSimConfig(), ReachRewardConfig(), SACConfig(), episode_steps=50,
               max_env_steps=20_000, after_steps=0, sync_every=1, verbose=False)


def main():
    args = parse(__doc__, lambda p: p.add_argument('--runs', type=int, default=3))
    require_workspace()
    runs = 1 if args.quick else args.runs
    base = baseline(0)
    print(f'baseline (1 process, no ROS): {base["steps"]} env steps, {base["seconds"]:.1f} s '
          f'to 0.9 success', flush=True)
    times, steps, rates = [], [], []
    with tempfile.TemporaryDirectory(prefix='realrl-bench-demo-') as tmp:
        for i in range(runs):
            run_dir = Path(tmp) / f'run{i}'
            code = run_realrl(['train', '--run-dir', str(run_dir), '--max-wall-s', '600'],
                              bench_env(120 + i), Path(tmp) / f'run{i}.log', timeout_s=700)
            summary = json.loads((run_dir / 'summary.json').read_text())
            ok = code == 0 and summary['outcome'] == 'success'
            times.append(summary['elapsed_s'] if ok else float('inf'))
            steps.append(summary['steps'])
            rates.append(summary['final_success_rate'])
            print(f'run {i}: {summary["outcome"]} after {summary["elapsed_s"]:.1f} s, '
                  f'{summary["steps"]} env steps, {summary["episodes"]} episodes, '
                  f'policy v{summary["policy_version"]}, '
                  f'success {summary["final_success_rate"]:.2f}',
                  flush=True)
    median = statistics.median(times)
    print(f'median time to success {median:.1f} s over {runs} run(s) (target: <= 600 s); '
          f'baseline needs {base["steps"]} steps, realrl median {statistics.median(steps):.0f}')
    emit({'time_to_success_s': round(median, 1), 'runs_s': [round(t, 1) for t in times],
          'final_success_rate': round(statistics.median(rates), 3),
          'env_steps': steps, 'baseline_single_process_s': round(base['seconds'], 1),
          'baseline_single_process_steps': base['steps']})


if __name__ == '__main__':
    main()
