"""Success classifier on peg-insertion frames: held-out accuracy vs. the majority class.

Frames are MuJoCo renders of the ``mujoco_peg`` task (front and wrist cameras, 84x84, as the
driver sends them) from ``classifier_tool.record_sim``: the scripted expert clean, noisy and
aiming beside the hole, with the peg jiggled after each success; each frame labelled by the
simulation (peg tip inside the hole at depth). The classifier trains on the episodes of one
range of seeds and is scored on episodes of another (other hole positions and starts, never
seen in training).

- ``heldout_accuracy``: share of held-out frames classified right (threshold 0.5).
- baseline ``majority_accuracy``: always answering the class most common in training,
  on the same held-out frames.
- ``heldout_success_recall`` / ``heldout_failure_recall``: accuracy within each class.
- ``infer_ms``: median time of one observation's label (both cameras, one CPU thread), as
  the reward node computes it.
- ``expert_success_rate``: the scripted expert over 20 seeded episodes (seeds 0..19, the
  driver's first 20), within the driver's 60 steps; ``expert_steps_median``.
- ``render_ms``: median ms per frame of each camera at 84x84 and 64x64; baseline
  ``reach_render_ms``: the reach arm's (panda7) 'front' camera at the same sizes, same run.
- ``paced``: the driver's work per control step (apply the expert's action, render both
  cameras at 84x84) run on a 10 Hz clock: median and p99 ms of that work and the ticks it made
  late (work past the 100 ms period), and the CPU ms it used (all threads of the process;
  on a machine shared with other work the wall time is longer); baseline ``reach_paced``:
  the reach arm (panda7) with its two cameras, same clock, same run.

Left out: frames from a learning policy (its failures may look different from the expert's),
the node's message decoding and DDS transport, and real cameras.

    .venv/bin/python bench/reward_classifier.py [--quick]
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import _util
import numpy as np

from realrl_driver.robots.mujoco_arm.peg_expert import PegExpert, run_episode
from realrl_driver.robots.mujoco_arm.peg_task import PegInsertionSim, PegTaskConfig
from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig, MujocoArmSim
from realrl_reward import classifier_net, classifier_tool
from realrl_reward.classifier_reward import ClassifierReward, ClassifierRewardConfig

CAMERAS = ('front', 'wrist')
SIZE = (84, 84)


def render_ms(sim, camera: str, size: int, n: int) -> float:
    """Median ms of one render of camera at size x size."""
    sim.render(camera, size, size)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        sim.render(camera, size, size)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def rendering(n: int) -> dict:
    peg = PegInsertionSim(PegTaskConfig(), 10.0, seed=0)
    reach = MujocoArmSim(ArmSimConfig(model='panda7', control_hz=10.0), seed=0)
    try:
        ours = {f'{cam}_{s}': round(render_ms(peg, cam, s, n), 3)
                for cam in CAMERAS for s in (84, 64)}
        base = {f'front_{s}': round(render_ms(reach, 'front', s, n), 3) for s in (84, 64)}
    finally:
        peg.close()
        reach.close()
    return {'render_ms': ours, 'reach_render_ms': base}


def paced_steps(sim, act, steps: int, hz: float = 10.0) -> dict:
    """The step's work (act, apply, render both cameras) on a hz clock: ms and late ticks."""
    period, work, cpu, late = 1.0 / hz, [], [], 0
    sim.reset(0)
    next_tick = time.perf_counter()
    for i in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        sim.apply(act())
        for cam in CAMERAS:
            sim.render(cam, SIZE[1], SIZE[0])
        done = time.perf_counter()
        work.append((done - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
        next_tick += period
        late += done > next_tick
        if i % 15 == 14:
            sim.reset(i)
        time.sleep(max(0.0, next_tick - time.perf_counter()))
    return {'step_ms_median': round(statistics.median(work), 2),
            'step_ms_p99': round(float(np.percentile(work, 99)), 2), 'late_ticks': int(late),
            'step_cpu_ms_median': round(statistics.median(cpu), 2),
            'steps': steps, 'period_ms': 1e3 * period}


def pacing(steps: int) -> dict:
    peg = PegInsertionSim(PegTaskConfig(), 10.0, seed=0)
    reach = MujocoArmSim(ArmSimConfig(model='panda7', control_hz=10.0), seed=0)
    rng = np.random.default_rng(0)
    try:
        ours = paced_steps(peg, PegExpert(peg).act, steps)
        base = paced_steps(reach, lambda: rng.uniform(-1, 1, 3), steps)
    finally:
        peg.close()
        reach.close()
    return {'paced': ours, 'reach_paced': base}


def expert(episodes: int = 20, max_steps: int = 60) -> dict:
    sim = PegInsertionSim(PegTaskConfig(), 10.0, seed=0)
    results = [run_episode(sim, PegExpert(sim), seed, max_steps) for seed in range(episodes)]
    return {'expert_success_rate': sum(s for s, _ in results) / episodes,
            'expert_steps_median': statistics.median(n for _, n in results)}


def classifier(train_episodes: int, test_episodes: int, epochs: int) -> dict:
    train = classifier_tool.record_sim(train_episodes, CAMERAS, SIZE, seed=200_000)
    test = classifier_tool.record_sim(test_episodes, CAMERAS, SIZE, seed=300_000)
    start = time.perf_counter()
    net = classifier_net.train(train.stacked(CAMERAS), train.labels, len(CAMERAS),
                               classifier_net.TrainConfig(epochs=epochs))
    train_s = time.perf_counter() - start
    prob = classifier_net.success_probability(net, test.stacked(CAMERAS))
    truth, guess = test.labels, prob >= 0.5
    majority_class = train.labels.mean() >= 0.5
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'classifier.pt'
        classifier_net.save(path, net, CAMERAS, SIZE)
        reward = ClassifierReward(ClassifierRewardConfig(model_path=str(path)))
        times = []
        for i in range(min(200, len(truth))):
            images = {c: test.images[c][i] for c in CAMERAS}
            t0 = time.perf_counter()
            reward.label(np.zeros(1), {}, images)
            times.append((time.perf_counter() - t0) * 1e3)
    return {'heldout_accuracy': round(float(np.mean(guess == truth)), 4),
            'majority_accuracy': round(float(np.mean(truth == majority_class)), 4),
            'heldout_success_recall': round(float(guess[truth].mean()), 4),
            'heldout_failure_recall': round(float((~guess[~truth]).mean()), 4),
            'train_frames': int(len(train.labels)),
            'train_successes': int(train.labels.sum()),
            'heldout_frames': int(len(truth)), 'heldout_successes': int(truth.sum()),
            'train_episodes': train_episodes, 'heldout_episodes': test_episodes,
            'epochs': epochs, 'train_s': round(train_s, 1),
            'infer_ms': round(statistics.median(times), 3)}


def main() -> None:
    args = _util.parse(__doc__.split('\n\n')[0])
    result = {'quick': bool(args.quick)}
    result.update(rendering(50 if args.quick else 300))
    result.update(pacing(50 if args.quick else 200))
    result.update(expert())
    if args.quick:
        result.update(classifier(9, 6, 4))
    else:
        result.update(classifier(60, 30, 12))
    _util.emit(result)


if __name__ == '__main__':
    main()
