"""Safety fuzz: a flood of bad action messages at a real driver over DDS.

A MuJoCo arm driver runs at 50 Hz with an audit log of every action it applies. The
fuzzer answers each observation with one valid action (so the robot keeps moving and
the guard is exercised while live) and floods random bad ones in between: NaN, inf,
out of range, wrong length, empty, stale step, stale episode. Figures: messages sent,
actions applied outside the limits (must be 0), rejections counted by the driver per
reason. Baseline, in the same run: the same actions through the pure-Python guard
(ActionGuard) in this process, which is what the driver must match.
"""
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from _util import ROOT, bench_env, emit, parse, require_workspace, start_process, stop_process

KINDS = ('nan', 'inf', 'out_of_range', 'wrong_length', 'empty', 'stale_step', 'stale_episode')
EXPECTED = {'nan': 'non_finite', 'inf': 'non_finite', 'out_of_range': 'out_of_range',
            'wrong_length': 'wrong_length', 'empty': 'wrong_length', 'stale_step': 'stale',
            'stale_episode': 'stale'}


def bad_action(kind: str, rng) -> tuple[list, int, int]:
    """(action, episode offset, step offset) of one bad message of this kind."""
    a = rng.uniform(-1, 1, 3)
    if kind == 'nan':
        a[rng.integers(3)] = np.nan
    elif kind == 'inf':
        a[rng.integers(3)] = rng.choice([np.inf, -np.inf])
    elif kind == 'out_of_range':
        a[rng.integers(3)] = rng.choice([-1, 1]) * rng.uniform(1.01, 1e6)
    elif kind == 'wrong_length':
        a = rng.uniform(-1, 1, int(rng.choice([1, 2, 4, 7, 100])))
    elif kind == 'empty':
        a = np.zeros(0)
    return a.tolist(), int(kind == 'stale_episode') * int(rng.integers(1, 5)), \
        -int(kind == 'stale_step') * int(rng.integers(1, 5))


def main():
    args = parse(__doc__)
    require_workspace()
    total = 1000 if args.quick else 10_000
    import rclpy
    from realrl_interfaces.msg import Action, DriverStatus, Observation, RewardLabel
    from realrl_common.convert import to_f32
    from realrl_common.lifecycle import bring_up
    from realrl_common.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS
    from realrl_driver.core.safety import ActionGuard

    rng = np.random.default_rng(0)
    env = bench_env(160)
    os.environ.update(env)
    with tempfile.TemporaryDirectory(prefix='realrl-bench-fuzz-') as tmp:
        applied_log = Path(tmp) / 'applied.jsonl'
        driver = start_process(
            [str(ROOT / 'install/realrl_driver/lib/realrl_driver/mujoco_arm_driver'), '--ros-args',
             '-r', '__ns:=/arm0', '-p', 'replay_wait_s:=0.0', '-p', 'control_hz:=50.0',
             '-p', f'applied_log:={applied_log}'], env, Path(tmp) / 'driver.log')
        rclpy.init()
        node = rclpy.create_node('fuzzer')
        observations, statuses = [], []
        node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
        node.create_subscription(DriverStatus, '/arm0/status', statuses.append, STATUS_QOS)
        actions = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)
        labels = node.create_publisher(RewardLabel, '/arm0/reward_label', COMMAND_QOS)
        sent = Counter()
        guard = ActionGuard([-1, -1, -1], [1, 1, 1])
        try:
            why = bring_up(node, '/arm0/driver', lambda t: rclpy.spin_once(node, timeout_sec=t),
                           timeout=30.0, alive=lambda: driver.poll() is None)
            assert not why, why
            answered = None
            deadline = time.monotonic() + 600
            while sum(sent.values()) < total and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.002)
                if not observations:
                    continue
                obs = observations[-1]
                if (obs.episode_id, obs.step) != answered:  # keep the robot moving
                    answered = (obs.episode_id, obs.step)
                    actions.publish(Action(robot_id='arm0', episode_id=obs.episode_id,
                                           step=obs.step, action=to_f32(rng.uniform(-1, 1, 3))))
                    labels.publish(RewardLabel(robot_id='arm0', episode_id=obs.episode_id,
                                               step=obs.step, reward=-1.0))
                kind = KINDS[int(rng.integers(len(KINDS)))]
                a, de, ds = bad_action(kind, rng)
                episode, step = obs.episode_id + de, max(0, obs.step + ds)
                if kind == 'stale_step' and step == obs.step:
                    step = obs.step + 1
                msg = Action(robot_id='arm0', episode_id=episode, step=step)
                msg.action = to_f32(a)
                actions.publish(msg)
                sent[kind] += 1
                guard.check(a, episode, step, obs.episode_id, obs.step)
                time.sleep(0.0005)
            time.sleep(1.0)
            rclpy.spin_once(node, timeout_sec=0.5)
            steps = statuses[-1].steps if statuses else 0
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
            stop_process(driver)
        log = (Path(tmp) / 'driver.log').read_text()
        counted = json.loads(log.split(' rejected: ', 1)[1].splitlines()[0]) if ' rejected: ' in log else {}
        applied = [json.loads(x) for x in applied_log.read_text().splitlines()]
    arr = [np.asarray(a, float) for a in applied]
    violations = sum(1 for a in arr if a.shape != (3,) or not np.all(np.isfinite(a))
                     or np.any(np.abs(a) > 1.0 + 1e-6))
    expected = Counter()
    for kind, n in sent.items():
        expected[EXPECTED[kind]] += n
    rejected = sum(counted.values())
    shortfall = {r: n - counted.get(r, 0) for r, n in expected.items() if counted.get(r, 0) < n}
    print(f'sent {sum(sent.values())} bad messages {dict(sent)}; the robot applied {len(applied)} '
          f'actions over {steps} steps, {violations} outside the limits')
    print(f'driver counted {rejected} rejections {counted}; expected at least {dict(expected)}'
          f'{"; MISSING " + str(shortfall) if shortfall else ""}')
    print(f'baseline ActionGuard in-process on the same messages: rejected {guard.rejected_total} '
          f'{dict(guard.rejected)}')
    emit({'messages': sum(sent.values()), 'violations': violations, 'rejected': rejected,
          'rejected_by_reason': counted, 'applied': len(applied), 'uncounted': sum(shortfall.values()),
          'baseline_guard_rejected': guard.rejected_total})


if __name__ == '__main__':
    main()
