"""HG-DAgger on the simulated reach arm: a BC-pretrained policy, a scripted expert standing in
for the person who takes over when the policy drifts, and the learning from those takeovers.

One process, synchronous: the MuJoCo reach arm (MujocoArmSim 'reach_arm', its 17-value
state, 'ee_delta' actions of at most 1 cm per axis, 20 Hz; episodes of at most 50 steps,
ended by success: the end effector within 2 cm of the target, stricter than the demo's 5 cm
so that the policy must be precise, and 10 to 30 steps long, so that it can drift). The
expert moves the end effector straight at the target at full speed. The policy is the
algorithm 'hg_dagger' (realrl_learner.algorithms.hg_dagger) with an 'mlp' actor (or
'--actor flow', the flow-matching actor), served deterministically:

1. behaviour cloning on ``--demos`` expert episodes (pretrain_updates updates on them only);
2. ``--rounds`` rounds: ``--episodes`` episodes with the scripted person watching
   (TakeoverRule: takes over when the policy's action differs from the expert's by more
   than 0.5 in any value, drives 5 steps, hands back); their intervention rows join the
   demonstrations, and the learner makes ``--updates`` updates on batches holding
   interventions at intervention_ratio 0.5.

Baselines, measured in the same run on the same 30 evaluation episodes (fixed seeds, no
person) as ``success_after``: the BC-pretrained policy before any intervention
(``success_before``), and plain BC given as many expert-labelled rows as HG-DAgger had in
the end, all from whole demonstrations, trained for as many updates
(``success_bc_same_labels``). The intervention rate of a round is the mean over its
episodes of the steps the person drove / the episode's steps.

What it leaves out: the ROS graph (driver, teleop device, replay store, learner node: here
one loop calls them in turn, so nothing runs in parallel and nothing goes through DDS);
camera images (a state task); a real person's reaction time and inconsistency.
"""
from __future__ import annotations

import time

import _util
import numpy as np
import torch

from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig, MujocoArmSim
from realrl_learner.algorithms.hg_dagger import ExpertRows, HGDAgger, HGDAggerConfig
from realrl_learner.algorithms.takeover import TakeoverRule, run_episode
from realrl_policy.actors.flow import FlowActorConfig
from realrl_policy.models import ActorConfig

EPISODE_STEPS = 50
SUCCESS_RADIUS_M = 0.02
EE_STEP_M = 0.01
EVAL_EPISODES = 30
BATCH = 128
INTERVENTION_RATIO = 0.5


class ReachTask:
    """The simulated arm as reset() / step(action) -> (state, success), and its expert."""

    def __init__(self, seed: int):
        self.sim = MujocoArmSim(ArmSimConfig(max_ee_step_m=EE_STEP_M), seed=seed)
        lo, hi = self.sim.observation_layout['ee_to_target']
        self._to_target = slice(lo, hi)
        self._next_seed = seed

    def reset(self) -> np.ndarray:
        self._next_seed += 1
        return self.sim.reset(self._next_seed)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        state = self.sim.apply(action)
        return state, bool(np.linalg.norm(state[self._to_target]) <= SUCCESS_RADIUS_M)

    def expert(self, state: np.ndarray) -> np.ndarray:
        step = self.sim.cfg.max_ee_step_m
        return np.clip(state[self._to_target] / step, -1.0, 1.0).astype(np.float32)


def greedy(algo: HGDAgger):
    """The served action: the actor's deterministic action (a chunk actor's first one)."""
    def policy(state):
        return np.asarray(algo.actor.act(state, deterministic=True)).reshape(-1, 3)[0]
    return policy


def evaluate(algo: HGDAgger) -> float:
    """Success rate of the policy alone on EVAL_EPISODES fixed episodes."""
    task = ReachTask(seed=1_000_000)
    wins = [run_episode(task.reset, task.step, greedy(algo), task.expert, EPISODE_STEPS).success
            for _ in range(EVAL_EPISODES)]
    task.sim.close()
    return float(np.mean(wins))


def bc_with_demos_only(cfg: HGDAggerConfig, rows: int, updates: int, seed: int) -> float:
    """Success of plain BC on whole demonstrations holding at least `rows` rows, trained
    for `updates` updates (the baseline with as many expert labels as HG-DAgger got)."""
    task = ReachTask(seed=seed + 500_000)
    algo = HGDAgger(task.sim.state_dim, task.sim.action_dim, cfg, seed=seed)
    data = ExpertRows(seed=seed)
    while data.count('demos') < rows:
        demo = run_episode(task.reset, task.step, task.expert, task.expert, EPISODE_STEPS)
        data.add('demos', {'obs': demo.obs, 'action': demo.action})
    task.sim.close()
    while algo.updates < updates:
        algo.update(data.sample(BATCH, INTERVENTION_RATIO, demos_only=True))
    return evaluate(algo)


def main() -> None:
    args = _util.parse(__doc__.splitlines()[0], lambda p: (
        p.add_argument('--demos', type=int, default=2),
        p.add_argument('--rounds', type=int, default=6),
        p.add_argument('--episodes', type=int, default=10),
        p.add_argument('--updates', type=int, default=300),
        p.add_argument('--actor', choices=('mlp', 'flow'), default='mlp'),
        p.add_argument('--seed', type=int, default=0)))
    if args.quick:
        args.rounds, args.episodes, args.updates = 3, 6, 200
    torch.set_num_threads(1)
    actor = (ActorConfig(hidden_sizes=(128, 128)) if args.actor == 'mlp'
             else FlowActorConfig(hidden_sizes=(128, 128)))
    cfg = HGDAggerConfig(actor=actor, lr=1e-3, batch_size=BATCH, pretrain_updates=500)
    task = ReachTask(seed=args.seed)
    algo = HGDAgger(task.sim.state_dim, task.sim.action_dim, cfg, seed=args.seed)
    data = ExpertRows(seed=args.seed)
    started = time.monotonic()

    for _ in range(args.demos):
        demo = run_episode(task.reset, task.step, task.expert, task.expert, EPISODE_STEPS)
        data.add('demos', {'obs': demo.obs, 'action': demo.action})
    while algo.pretraining:
        algo.update(data.sample(BATCH, INTERVENTION_RATIO, demos_only=True))
    success_before = evaluate(algo)
    print(f'BC on {args.demos} demonstrations ({data.count("demos")} rows): '
          f'success {success_before:.2f}')

    rule = TakeoverRule(drift=0.5, hold_steps=5)
    rates, successes = [], []
    for r in range(args.rounds):
        logs = [run_episode(task.reset, task.step, greedy(algo), task.expert, EPISODE_STEPS,
                            rule) for _ in range(args.episodes)]
        rates.append(float(np.mean([algo.record_episode(log.steps, log.interventions)
                                    for log in logs])))
        for log in logs:
            if log.intervention.any():
                took = log.intervention
                data.add('interventions', {'obs': log.obs[took], 'action': log.action[took]})
        for _ in range(args.updates):
            algo.update(data.sample(BATCH, INTERVENTION_RATIO))
        successes.append(evaluate(algo))
        print(f'round {r + 1}: intervention rate {rates[-1]:.3f} | success after it '
              f'{successes[-1]:.2f} | intervention rows {data.count("interventions")}')
    labels = data.count('demos') + data.count('interventions')
    success_bc = bc_with_demos_only(cfg, labels, algo.updates, args.seed)
    task.sim.close()

    print(f'baseline: BC on {labels} demonstrated rows, {algo.updates} updates: '
          f'success {success_bc:.2f}')
    print('intervention rate per round:', ' '.join(f'{x:.3f}' for x in rates))
    print('success per round:          ', ' '.join(f'{x:.2f}' for x in successes))
    print(f'success {success_before:.2f} -> {successes[-1]:.2f} '
          f'({100 * (successes[-1] - success_before):+.0f} points); intervention rate '
          f'{rates[0]:.3f} -> {rates[-1]:.3f}')
    _util.emit({
        'actor': args.actor, 'demos': args.demos, 'rounds': args.rounds,
        'episodes_per_round': args.episodes, 'updates_per_round': args.updates,
        'success_before': success_before, 'success_after': successes[-1],
        'success_bc_same_labels': success_bc,
        'intervention_rate_first': rates[0], 'intervention_rate_last': rates[-1],
        'success_curve': successes, 'intervention_rate_curve': rates,
        'intervention_rows': data.count('interventions'), 'demo_rows': data.count('demos'),
        'wall_s': round(time.monotonic() - started, 1)})


if __name__ == '__main__':
    main()
