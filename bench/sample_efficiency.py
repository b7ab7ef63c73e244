"""Environment steps to reach Stable-Baselines3 SAC's final return, through realrl's whole graph.

For each task (gymnasium MuJoCo InvertedPendulum-v5 and InvertedDoublePendulum-v5) and seed:

- baseline: Stable-Baselines3 SAC with its default hyperparameters (networks (256, 256), batch
  256, Adam 3e-4, gamma 0.99, tau 0.005, learning_starts 100, one update per step, automatic
  temperature from 1.0) for the task's step budget, in this process;
- ours: `realrl train` with a graph YAML (gym driver with the environment's own reward, policy,
  replay, learner; no reward node) and the same hyperparameters. The run is stopped once its
  episodes add up to the budget. ``--mode``:

  - ``async`` (the default, the system's own mode): nothing waits. The driver runs at
    ``--control-hz`` (by default half the update rate our learner measures here at the
    start, at most 50 Hz, so that the learner can keep one update per step); the learner
    publishes weights every 0.1 s, so the policy changes every few steps, as SB3's does
    every step. On a loaded machine the learner falls behind and the run gets fewer updates
    per step (``ours_utd`` shows it): run it on a quiet machine.
  - ``sync``: the graph's synchronous mode. After each episode the robot waits
    while the learner makes one update per stored step, then goes on with the new weights
    (SB3's ``train_freq=(1, 'episode')``). Every run gets SB3's update-to-data ratio
    whatever else loads the machine. The driver runs at ``--control-hz`` (50 Hz). It trains
    after each episode, SB3 after each step: within an episode its policy is the one of
    the episode's start, a handicap on long episodes (InvertedPendulum).

A run's return curve is the mean return of its last 10 training episodes (stochastic policy,
as collected), at each episode's end, against the environment steps so far. SB3's final return
(per task, the median over seeds of each curve's last value) is the target; ``ours_steps`` and
``sb3_steps`` are the medians over seeds of the steps at which each curve first reaches it (a
run that never does counts as never, is listed in ``never``, and where the median run never
did the figure is null). ``ratio`` = ours_steps / sb3_steps (<= 1.0: we need no more samples
than SB3; null when either never got there).

Left out: wall-clock time (ours runs at a real-time control rate, SB3 as fast as it can), and
evaluation with a deterministic policy. SB3 updates after every step, ours (sync) after every
episode: within an episode our policy is the one of its start. Each run reports its updates
per step (``ours_utd``), so a learner that fell behind (async) shows here rather than as an
unexplained gap.

Stable-Baselines3 is a peer installed only for this benchmark:
    .venv/bin/pip install -r bench/requirements-peers.txt
    source scripts/env.sh && python bench/sample_efficiency.py [--quick] [--control-hz HZ]
"""
from __future__ import annotations

import json
import math
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _util
import numpy as np

from realrl_bringup.progress import read_jsonl

TASKS = {'InvertedPendulum-v5': 8000, 'InvertedDoublePendulum-v5': 10000}
"""Task -> step budget of the full run (--quick: 1000 steps each, one seed)."""
WINDOW = 10
SB3_DEFAULTS = dict(gamma=0.99, tau=0.005, actor_lr=3e-4, critic_lr=3e-4, alpha_lr=3e-4,
                    batch_size=256, learning_starts=100, updates_per_step=1.0,
                    init_temperature=1.0, critic_hidden_sizes=[256, 256],
                    actor={'hidden_sizes': [256, 256]})


def curve(episodes: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """(steps so far, mean return of the last WINDOW episodes) at each episode's end."""
    out, steps, returns = [], 0, []
    for n, ret in episodes:
        steps += n
        returns.append(ret)
        out.append((steps, float(np.mean(returns[-WINDOW:]))))
    return out


def steps_to_reach(points: list[tuple[int, float]], target: float, budget: int) -> int | None:
    """The first step count at which the curve reaches target (after a full window)."""
    for k, (steps, value) in enumerate(points):
        if k + 1 >= WINDOW and value >= target and steps <= budget:
            return steps
    return None


def run_sb3(env_id: str, budget: int, seed: int) -> list[tuple[int, float]]:
    try:
        from stable_baselines3 import SAC
        from stable_baselines3.common.monitor import Monitor
    except ImportError:
        sys.exit('bench: Stable-Baselines3 is not installed; it is a peer installed only for '
                 'the benchmarks: .venv/bin/pip install -r bench/requirements-peers.txt')
    import gymnasium
    import torch
    torch.set_num_threads(1)
    env = Monitor(gymnasium.make(env_id))
    model = SAC('MlpPolicy', env, seed=seed, device='cpu', verbose=0)
    model.learn(total_timesteps=budget)
    episodes = list(zip(env.get_episode_lengths(), env.get_episode_rewards()))
    env.close()
    return curve(episodes)


def graph_yaml(env_id: str, seed: int, control_hz: float, mode: str) -> str:
    graph = {
        'name': 'sample_efficiency',
        'mode': mode,
        'stop': {'success_rate': 1.0, 'window': 1, 'max_wall_s': 3600},
        'nodes': [
            {'name': 'replay', 'package': 'realrl_replay', 'executable': 'replay_node',
             'parameters': {'store_path': '${run_dir}/replay', 'robot_ids': ['g0']}},
            {'name': 'learner', 'package': 'realrl_learner', 'executable': 'learner_node',
             'parameters': {'store_path': '${run_dir}/replay', 'seed': seed,
                            'checkpoint_dir': '${run_dir}/checkpoints',
                            'metrics_path': '${run_dir}/metrics/learner.jsonl',
                            'publish_every_s': 0.1, 'checkpoint_every_s': 600.0,
                            'refresh_every_s': 0.05, 'sac': SB3_DEFAULTS}},
            {'name': 'policy', 'package': 'realrl_policy', 'executable': 'policy_node',
             'parameters': {'robot_ids': ['g0'], 'seed': seed}},
            {'name': 'driver', 'namespace': 'g0', 'package': 'realrl_driver',
             'executable': 'gym_driver', 'lifecycle': True,
             'parameters': {'robot_id': 'g0', 'control_hz': control_hz, 'seed': seed,
                            'episode_max_steps': 1000, 'env': {'env_id': env_id}}},
        ],
    }
    return json.dumps(graph, indent=1)  # JSON is YAML


def run_ours(env_id: str, budget: int, seed: int, control_hz: float, mode: str, domain: int,
             tmp: Path) -> tuple[list[tuple[int, float]], float]:
    """Our graph on env_id until its episodes add up to budget steps; (curve, updates/step)."""
    name = f'{env_id}-s{seed}'
    config, run_dir = tmp / f'{name}.yaml', tmp / name
    config.write_text(graph_yaml(env_id, seed, control_hz, mode))
    episodes_log = run_dir / 'metrics' / 'episodes.jsonl'
    limit = budget / control_hz * 3 + 120 + (budget / 5 if mode == 'sync' else 0)
    with open(tmp / f'{name}.log', 'wb') as log:
        proc = subprocess.Popen(
            [str(_util.REALRL), 'train', '--config', str(config), '--run-dir', str(run_dir),
             '--no-stop-at-success', '--max-wall-s', str(limit)],
            stdout=log, stderr=subprocess.STDOUT, env=_util.bench_env(domain), cwd=_util.ROOT,
            start_new_session=True)
        try:
            while proc.poll() is None:
                time.sleep(1.0)
                if sum(e['steps'] for e in read_jsonl(episodes_log)) >= budget:
                    proc.send_signal(signal.SIGINT)
                    break
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    episodes = [(e['steps'], e['return']) for e in read_jsonl(episodes_log)]
    steps = sum(n for n, _ in episodes)
    learner = read_jsonl(run_dir / 'metrics' / 'learner.jsonl')
    updates = max((r.get('updates', 0) for r in learner), default=0)
    if not episodes:
        sys.exit(f'bench: {name} finished no episode; see {tmp / (name + ".log")}')
    return curve(episodes), updates / max(steps, 1)


def summarise(curves: dict[str, list], target: float, budget: int, env_id: str,
              never: list[str]) -> dict:
    """Per learner, the median over seeds of the steps to reach target (None where the median
    run never did), its median final return; and the ratio ours / sb3 (None if unknown)."""
    per = {'target_return': round(target, 1), 'budget': budget}
    for who, runs in curves.items():
        steps = []
        for seed, points in enumerate(runs):
            reached = steps_to_reach(points, target, budget)
            if reached is None:
                never.append(f'{who}:{env_id}:seed{seed}')
            steps.append(math.inf if reached is None else reached)
        median = statistics.median(steps)
        per[f'{who}_steps'] = None if math.isinf(median) else int(median)
        per[f'{who}_final_return'] = round(statistics.median(c[-1][1] for c in runs), 1)
    known = per['ours_steps'] is not None and per['sb3_steps'] is not None
    per['ratio'] = round(per['ours_steps'] / per['sb3_steps'], 3) if known else None
    return per


def learner_rate(seconds: float = 5.0) -> float:
    """Updates per second of our SAC (SB3's sizes, one thread) on this machine right now."""
    import torch

    from realrl_learner.sac import SAC, SACConfig
    from realrl_policy.models import ActorConfig
    torch.set_num_threads(1)
    sizes = {k: v for k, v in SB3_DEFAULTS.items() if k not in ('actor', 'critic_hidden_sizes')}
    cfg = SACConfig(**sizes, actor=ActorConfig(hidden_sizes=(256, 256)),
                    critic_hidden_sizes=(256, 256))
    sac, n = SAC(11, 1, cfg), 256
    batch = {'obs': torch.randn(n, 11), 'action': torch.rand(n, 1) * 2 - 1,
             'reward': torch.randn(n), 'next_obs': torch.randn(n, 11),
             'terminated': torch.zeros(n)}
    sac.update(batch)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sac.update(batch)
        count += 1
    return count / (time.perf_counter() - t0)


def main() -> None:
    def extra(p):
        p.add_argument('--seeds', type=int, default=3)
        p.add_argument('--mode', choices=('sync', 'async'), default='async',
                       help="the graph's mode (sync: one update per step whatever the load, "
                            'trained after each episode)')
        p.add_argument('--control-hz', type=float, default=0.0,
                       help='driver rate; 0: 50 Hz (sync), or half the rate our learner '
                            'updates at here now, at most 50 Hz (async)')
        p.add_argument('--tasks', nargs='+', default=list(TASKS))
    args = _util.parse(__doc__.splitlines()[0], extra)
    _util.require_workspace()
    seeds = 1 if args.quick else args.seeds
    if args.control_hz <= 0 and args.mode == 'sync':
        args.control_hz = 50.0
    elif args.control_hz <= 0:
        rate = learner_rate()
        args.control_hz = round(min(50.0, max(1.0, rate / 2)), 1)
        print(f'our learner makes {rate:.1f} updates/s here now: driver at '
              f'{args.control_hz} Hz', flush=True)
    base = int(__import__('os').environ.get('REALRL_BENCH_DOMAIN', 95))
    results, never = {}, []
    with tempfile.TemporaryDirectory(prefix='realrl-bench-sample-') as tmp_name:
        tmp = Path(tmp_name)
        for t, env_id in enumerate(args.tasks):
            budget = 1000 if args.quick else TASKS[env_id]
            sb3 = [run_sb3(env_id, budget, s) for s in range(seeds)]
            target = statistics.median(c[-1][1] for c in sb3)
            ours, utd = [], []
            for s in range(seeds):
                c, u = run_ours(env_id, budget, s, args.control_hz, args.mode,
                                base + 3 * t + s, tmp)
                ours.append(c)
                utd.append(round(u, 3))
            per = summarise({'ours': ours, 'sb3': sb3}, target, budget, env_id, never)
            per.update(ours_utd=utd)
            results[env_id] = per
            print(f'{env_id}: SB3 final return {target:.1f}; steps to reach it: ours '
                  f'{per["ours_steps"]}, SB3 {per["sb3_steps"]} (ratio {per["ratio"]}); '
                  f'our updates per step {utd}', flush=True)
    _util.emit({'tasks': results, 'seeds': seeds, 'mode': args.mode,
                'control_hz': args.control_hz,
                'never': never})


if __name__ == '__main__':
    main()
