r"""Private check (not a benchmark): how fast SAC learns the simulated reach.

One process, synchronous: MujocoArmSim + ReachReward (dense) + a numpy ring buffer + SAC.
Episodes end on success (terminated) or after --episode-steps (truncated). Reports, per
seed, the env steps and wall seconds until the success rate of the last 20 episodes is
at least 0.9.

    PYTHONPATH=src/realrl_driver:src/realrl_reward:src/realrl_policy:src/realrl_learner \
        .venv/bin/python bench/_reach_learning_check.py --seeds 0 1 2

Overrides: --sac batch_size=256 --sim max_ee_step_m=0.04 --reward success_bonus=1
"""

import argparse
import ast
import dataclasses
import time
from collections import deque

import numpy as np
import torch

from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig, MujocoArmSim
from realrl_learner.sac import SAC, SACConfig
from realrl_policy.models import actor_from_bytes, actor_to_bytes
from realrl_reward.reach_reward import ReachReward, ReachRewardConfig

WINDOW = 20
GOAL = 0.9


class RingBuffer:
    """Fixed-capacity transition store with uniform sampling."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, seed: int):
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros((capacity, act_dim), np.float32)
        self.reward = np.zeros((capacity, 1), np.float32)
        self.terminated = np.zeros((capacity, 1), np.float32)
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.rng = np.random.default_rng(seed)

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        i = self.pos
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.terminated[i] = next_obs, terminated
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int) -> dict[str, torch.Tensor]:
        idx = self.rng.integers(0, self.size, n)
        return {k: torch.from_numpy(getattr(self, k)[idx])
                for k in ('obs', 'action', 'reward', 'next_obs', 'terminated')}


def run(seed: int, sim_cfg: ArmSimConfig, reward_cfg: ReachRewardConfig, sac_cfg: SACConfig,
        episode_steps: int, max_env_steps: int, after_steps: int, sync_every: int,
        verbose: bool) -> dict:
    sim = MujocoArmSim(sim_cfg, seed=seed)
    reward_fn = ReachReward(reward_cfg)
    sac = SAC(sim.state_dim, sim.action_dim, sac_cfg, seed=seed)
    policy = sac.actor
    buf = RingBuffer(max_env_steps, sim.state_dim, sim.action_dim, seed)
    rng = np.random.default_rng(seed + 1000)
    recent: deque[bool] = deque(maxlen=WINDOW)
    episodes, update_credit, metrics = 0, 0.0, {}
    solved, stop_at, after_successes = None, max_env_steps, []
    obs, ep_len = sim.reset(seed), 0
    start = time.perf_counter()
    for step in range(1, max_env_steps + 1):
        if step <= sac_cfg.learning_starts:
            action = rng.uniform(-1, 1, sim.action_dim).astype(np.float32)
        else:
            action = policy.act(obs, deterministic=False)
        next_obs = sim.apply(action)
        reward, success = reward_fn.label(next_obs, sim.observation_layout)
        buf.add(obs, action, reward, next_obs, float(success))
        obs, ep_len = next_obs, ep_len + 1

        if step >= sac_cfg.learning_starts:
            update_credit += sac_cfg.updates_per_step
            while update_credit >= 1.0:
                metrics = sac.update(buf.sample(sac_cfg.batch_size))
                update_credit -= 1.0
        if sync_every == 0:
            policy = sac.actor
        elif step % sync_every == 0:  # as the learner publishing weights to the policy
            policy = actor_from_bytes(sac_cfg.actor, sim.state_dim, sim.action_dim,
                                      actor_to_bytes(sac.actor))

        if success or ep_len >= episode_steps:
            recent.append(success)
            episodes += 1
            obs, ep_len = sim.reset(), 0
            rate = sum(recent) / len(recent)
            if verbose and episodes % 20 == 0:
                print(f'  seed {seed} step {step:5d} ep {episodes:4d} success@{WINDOW} {rate:.2f} '
                      f'alpha {metrics.get("train/alpha", float("nan")):.3f} '
                      f'q {metrics.get("train/q_mean", float("nan")):.2f} '
                      f'{time.perf_counter() - start:.1f}s', flush=True)
            if solved is not None:
                after_successes.append(success)
            elif len(recent) == WINDOW and rate >= GOAL:
                solved = {'seed': seed, 'solved': True, 'steps': step, 'episodes': episodes,
                          'seconds': time.perf_counter() - start}
                stop_at = step + after_steps
        if solved is not None and step >= stop_at:
            break
    result = solved or {'seed': seed, 'solved': False, 'steps': max_env_steps,
                        'episodes': episodes, 'seconds': time.perf_counter() - start}
    # Success rate of the episodes that ended after the goal was first met: does it hold?
    result['after_rate'] = (sum(after_successes) / len(after_successes)
                            if after_successes else float('nan'))
    return result


def overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, _, text = pair.partition('=')
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--episode-steps', type=int, default=50)
    parser.add_argument('--max-env-steps', type=int, default=15_000)
    parser.add_argument('--sim', nargs='*', default=[], help='ArmSimConfig field=value')
    parser.add_argument('--reward', nargs='*', default=[], help='ReachRewardConfig field=value')
    parser.add_argument('--sac', nargs='*', default=[], help='SACConfig field=value')
    parser.add_argument('--after-steps', type=int, default=0,
                        help='keep training this many env steps after the goal is met and '
                             'report the success rate of the episodes in that stretch')
    parser.add_argument('--sync-every', type=int, default=0,
                        help='act with a copy of the actor refreshed every this many env '
                             'steps (emulates weight publishing); 0 acts with the live actor')
    parser.add_argument('-v', '--verbose', action='store_true')
    args = parser.parse_args()
    torch.set_num_threads(1)

    sac_over = overrides(args.sac)
    if 'actor_hidden_sizes' in sac_over:
        base = SACConfig().actor
        sac_over['actor'] = dataclasses.replace(
            base, hidden_sizes=sac_over.pop('actor_hidden_sizes'))
    sim_cfg = ArmSimConfig(**overrides(args.sim))
    reward_cfg = ReachRewardConfig(**{'mode': 'dense', **overrides(args.reward)})
    sac_cfg = SACConfig(**sac_over)
    print(f'sim {overrides(args.sim)} reward {overrides(args.reward)} sac {overrides(args.sac)} '
          f'episode_steps {args.episode_steps} sync_every {args.sync_every}')
    results = []
    for seed in args.seeds:
        r = run(seed, sim_cfg, reward_cfg, sac_cfg, args.episode_steps, args.max_env_steps,
                args.after_steps, args.sync_every, args.verbose)
        results.append(r)
        status = 'solved' if r['solved'] else 'NOT solved'
        print(f'seed {seed}: {status} at {r["steps"]} env steps, {r["episodes"]} episodes, '
              f'{r["seconds"]:.1f} s'
              + (f'; afterwards {r["after_rate"]:.2f} success' if args.after_steps else ''),
              flush=True)
    steps = [r['steps'] for r in results]
    secs = [r['seconds'] for r in results]
    print(f'solved {sum(r["solved"] for r in results)}/{len(results)}; steps median '
          f'{int(np.median(steps))} max {max(steps)}; seconds median {np.median(secs):.1f} '
          f'max {max(secs):.1f}')


if __name__ == '__main__':
    main()
