"""SAC gradient updates per second: ours (realrl_learner.sac) vs. Stable-Baselines3's SAC.

Both learners have the same networks (actor and each of the twin critics an MLP of
(256, 256), ReLU; ours with its defaults critic_matmul_dtype and actor_matmul_dtype 'auto':
bfloat16 hidden-layer products on a CPU with bf16 instructions), batch 256, Adam, learned
temperature, one update of actor, critics, temperature and target critics per step, and
both run in this process on ONE CPU thread (torch.set_num_threads(1)). The batches are real
transitions: random-action steps of MuJoCo HalfCheetah-v5 (17 observation values, 6 action
values), drawn beforehand, so the figure is the update alone (no replay sampling, on either
side). The learners are timed in alternation, in short rounds, under the same load; each
figure is the median over rounds.

- ``ours_updates_per_s``, ``sb3_updates_per_s``; ``ratio`` = median of the rounds' ours/sb3.
- ``ratio_cpu_time``: the same ratio from this thread's CPU time in the same rounds (on a
  shared machine wall-clock rounds also hold other processes' time slices; CPU time does not).
- ``matmul_gflops``: this core's sustained float32 matrix-product rate, measured in the same
  rounds (square products of 256 and 1024; the better of the two).
- ``update_gflop``: the matrix-product FLOPs that one of our updates needs, counted from the
  layer shapes (target actor and target critics forward; critics forward, weight gradients
  and the hidden layers' input gradients; actor forward, critics forward and input gradients,
  actor weight and hidden input gradients). Element-wise work (activations, the squashed
  Gaussian, Adam) is left out, so the bound is optimistic.
- ``fraction_of_bound`` = ours_updates_per_s / (matmul_gflops / update_gflop); as our networks
  multiply in bfloat16, this fraction can exceed what float32 alone would allow.
- ``ours_float32_updates_per_s``: ours with critic_matmul_dtype and actor_matmul_dtype
  float32, in the same rounds.

Not included: replay sampling and the transfer of a batch into tensors, the learner node's
pacing and weight publication, anything on a GPU.

Stable-Baselines3 is a peer installed only for this benchmark:
    .venv/bin/pip install -r bench/requirements-peers.txt
    source scripts/env.sh && python bench/sac_throughput.py [--quick]
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
import time

import _util
import gymnasium
import numpy as np
import torch

from realrl_learner.sac import SAC, SACConfig
from realrl_policy.models import ActorConfig

HIDDEN = (256, 256)
BATCH = 256
ENV_ID = 'HalfCheetah-v5'


def import_sb3():
    """Stable-Baselines3's SAC and its logger, or exit saying how to install them."""
    try:
        from stable_baselines3 import SAC as SB3SAC
        from stable_baselines3.common.logger import Logger
        from stable_baselines3.common.type_aliases import ReplayBufferSamples
    except ImportError:
        sys.exit('bench: Stable-Baselines3 is not installed; it is a peer installed only for '
                 'the benchmarks: .venv/bin/pip install -r bench/requirements-peers.txt')
    return SB3SAC, Logger, ReplayBufferSamples


def transitions(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The given number of steps of ENV_ID under uniformly random actions."""
    env = gymnasium.make(ENV_ID)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = {k: [] for k in ('obs', 'action', 'reward', 'next_obs', 'terminated')}
    for _ in range(n):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for k, v in zip(out, (obs, action, reward, next_obs, terminated)):
            out[k].append(np.asarray(v, np.float32))
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    return {k: np.stack(v) for k, v in out.items()}


def batches(data: dict[str, np.ndarray], count: int, seed: int) -> list[dict[str, torch.Tensor]]:
    rng = np.random.default_rng(seed)
    n = len(data['obs'])
    out = []
    for _ in range(count):
        idx = rng.integers(0, n, BATCH)
        out.append({k: torch.from_numpy(v[idx]).reshape(BATCH, -1) for k, v in data.items()})
    return out


def linear_flops(sizes: list[int], input_grad_first: bool) -> tuple[int, int, int]:
    """(forward, weight-gradient, input-gradient) matrix-product FLOPs per row of an MLP."""
    fwd = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    inp = sum(2 * a * b for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
              if k > 0 or input_grad_first)
    return fwd, fwd, inp


def update_flops(obs_dim: int, act_dim: int) -> int:
    """Matrix-product FLOPs of one SAC update at BATCH (see the module docstring)."""
    actor = [obs_dim, *HIDDEN, 2 * act_dim]
    critic = [obs_dim + act_dim, *HIDDEN, 1]
    a_fwd, a_w, a_in = linear_flops(actor, input_grad_first=False)
    c_fwd, c_w, c_in_hidden = linear_flops(critic, input_grad_first=False)
    _, _, c_in_all = linear_flops(critic, input_grad_first=True)
    target = a_fwd + 2 * c_fwd
    critic_step = 2 * (c_fwd + c_w + c_in_hidden)
    actor_step = a_fwd + 2 * (c_fwd + c_in_all) + a_w + a_in
    return BATCH * (target + critic_step + actor_step)


def matmul_gflops(seconds: float) -> float:
    """Best sustained float32 GFLOP/s of square products of 256 and 1024 on this thread."""
    best = 0.0
    for n in (256, 1024):
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            torch.mm(a, b, out=out)
            reps += 1
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9)
    return best


def make_sb3(obs_dim: int, act_dim: int, sb3_batches: list, seed: int):
    SB3SAC, Logger, _ = import_sb3()
    env = gymnasium.make(ENV_ID)
    model = SB3SAC('MlpPolicy', env, policy_kwargs={'net_arch': list(HIDDEN)},
                   batch_size=BATCH, learning_starts=0, buffer_size=1000, device='cpu',
                   seed=seed)
    model.set_logger(Logger(folder=None, output_formats=[]))
    cursor = iter(range(10 ** 12))
    model.replay_buffer.sample = (
        lambda batch_size, env=None: sb3_batches[next(cursor) % len(sb3_batches)])
    env.close()
    return model


def to_sb3(batch: dict[str, torch.Tensor]):
    *_, ReplayBufferSamples = import_sb3()
    return ReplayBufferSamples(batch['obs'], batch['action'], batch['next_obs'],
                               batch['terminated'], batch['reward'])


def main() -> None:
    args = _util.parse(__doc__.splitlines()[0])
    import_sb3()
    torch.set_num_threads(1)
    rounds, per_round = (10, 5) if args.quick else (40, 10)  # short rounds: load drifts
    data = transitions(5000 if args.quick else 20000)
    obs_dim, act_dim = data['obs'].shape[1], data['action'].shape[1]
    ours_batches = batches(data, 64, seed=1)
    sb3_batches = [to_sb3(b) for b in ours_batches]
    cfg = SACConfig(gamma=0.99, tau=0.005, actor_lr=3e-4, critic_lr=3e-4, alpha_lr=3e-4,
                    batch_size=BATCH, actor=ActorConfig(hidden_sizes=HIDDEN),
                    critic_hidden_sizes=HIDDEN, init_temperature=1.0)
    ours = SAC(obs_dim, act_dim, cfg, seed=0)
    ours32 = SAC(obs_dim, act_dim, dataclasses.replace(
        cfg, critic_matmul_dtype='float32', actor_matmul_dtype='float32'), seed=0)
    sb3 = make_sb3(obs_dim, act_dim, sb3_batches, seed=0)
    for k in range(10):  # warm up all (allocator, first-call dispatch)
        ours.update(ours_batches[k])
        ours32.update(ours_batches[k])
    sb3.train(gradient_steps=10, batch_size=BATCH)

    flops = update_flops(obs_dim, act_dim)
    ours_rates, ours32_rates, sb3_rates, ratios, gflops = [], [], [], [], []
    cpu_ratios = []  # the same rounds timed in this thread's CPU time
    for r in range(rounds):
        for learner, rates in ((ours, ours_rates), (ours32, ours32_rates)):
            t0, c0 = time.perf_counter(), time.thread_time()
            for k in range(per_round):
                learner.update(ours_batches[k % len(ours_batches)])
            rates.append(per_round / (time.perf_counter() - t0))
            if learner is ours:
                ours_cpu = time.thread_time() - c0
        t0, c0 = time.perf_counter(), time.thread_time()
        sb3.train(gradient_steps=per_round, batch_size=BATCH)
        sb3_rates.append(per_round / (time.perf_counter() - t0))
        ratios.append(ours_rates[-1] / sb3_rates[-1])
        cpu_ratios.append((time.thread_time() - c0) / ours_cpu)
        gflops.append(matmul_gflops(0.3))
        if r % 10 == 9 or r == rounds - 1:
            print(f'round {r}: ours {ours_rates[-1]:.1f}/s  sb3 {sb3_rates[-1]:.1f}/s  '
                  f'matmul {gflops[-1]:.1f} GFLOP/s', flush=True)

    result = {
        'ours_updates_per_s': round(statistics.median(ours_rates), 2),
        'sb3_updates_per_s': round(statistics.median(sb3_rates), 2),
        'ratio': round(statistics.median(ratios), 3),
        'ratio_cpu_time': round(statistics.median(cpu_ratios), 3),
        'ours_float32_updates_per_s': round(statistics.median(ours32_rates), 2),
        'matmul_gflops': round(statistics.median(gflops), 1),
        'update_gflop': round(flops / 1e9, 4),
    }
    bound = result['matmul_gflops'] / result['update_gflop']
    result['bound_updates_per_s'] = round(bound, 1)
    result['fraction_of_bound'] = round(result['ours_updates_per_s'] / bound, 3)
    print(f'ours {result["ours_updates_per_s"]}/s vs Stable-Baselines3 '
          f'{result["sb3_updates_per_s"]}/s (ratio {result["ratio"]}); float32 bound '
          f'{bound:.0f}/s ({result["update_gflop"]} GFLOP per update at '
          f'{result["matmul_gflops"]} GFLOP/s): {result["fraction_of_bound"]:.0%} of it')
    _util.emit(result)


if __name__ == '__main__':
    main()
