"""Safety fuzz: a flood of bad action messages at a real driver over DDS, on every command
input it has, with the bounds probed and every valid action checked against what was applied.

A MuJoCo arm driver (action bounds [-1, 1]) runs at 50 Hz with an audit log of every action
it applies. Its command input is /arm0/action, written by the policy (intervention: false)
and by a teleop node (intervention: true, which outranks the policy for that step); the
fuzzer writes both. It answers each observation with one valid action, so the robot keeps
moving and the guard is exercised while live. The valid action is random inside the bounds,
exactly at a bound, or inside the guard's tolerance band just beyond one (to be applied
set onto the bound). It comes from the policy, from teleop, or from both (teleop first, then a
different policy action: the teleop one must be applied). In between it floods bad messages,
each from the policy or the teleop writer: NaN, inf, out of range, just beyond the tolerance
band, wrong length, empty, stale step, stale episode.

Figures: messages sent; actions applied outside the limits (must be 0); valid actions not
applied as the guard defines them, applied other than sent, or applied unasked (must be 0:
`valid_mismatched`); values set onto a bound from the tolerance band (`clipped_into_bounds`,
one per in-band action applied); rejections counted by the driver per reason. Baseline, in
the same run: the same messages through the pure-Python guard (ActionGuard) in this process,
which is what the driver must match. `uncounted` are bad messages the driver never saw:
commands travel reliable but keep only the last 10, so a flood on a loaded machine drops some
before the driver's executor takes them; for the same reason a person's action can be lost
and the policy's for that step applied instead (`intervention_lost`, not a guard failure).

Left out: the reward-label and ack inputs (they carry no command to the robot), e-stop, and
actions from a second writer for the same step as a valid one (DDS orders messages of one
writer only, so the valid ones of both sources share one writer to make the winner
checkable; the teleop writer sends bad messages only).
"""
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _util import ROOT, bench_env, emit, parse, require_workspace, start_process, stop_process

KINDS = ('nan', 'inf', 'out_of_range', 'just_beyond', 'wrong_length', 'empty', 'stale_step',
         'stale_episode')
EXPECTED = {'nan': 'non_finite', 'inf': 'non_finite', 'out_of_range': 'out_of_range',
            'just_beyond': 'out_of_range', 'wrong_length': 'wrong_length',
            'empty': 'wrong_length', 'stale_step': 'stale', 'stale_episode': 'stale'}
VALID = ('inside', 'at_bound', 'in_band')
SOURCES = ('policy', 'teleop', 'teleop_over_policy')
IN_BAND = float(np.nextafter(np.float32(1), np.float32(2)))  # 1 + 1.2e-7 < 1 + tolerance
JUST_BEYOND = float(np.float32(1.0 + 2e-6))  # beyond the 1e-6 band, as float32 holds it


def bad_action(kind: str, rng) -> tuple[list, int, int]:
    """(action, episode offset, step offset) of one bad message of this kind."""
    a = rng.uniform(-1, 1, 3)
    if kind == 'nan':
        a[rng.integers(3)] = np.nan
    elif kind == 'inf':
        a[rng.integers(3)] = rng.choice([np.inf, -np.inf])
    elif kind == 'out_of_range':
        a[rng.integers(3)] = rng.choice([-1, 1]) * rng.uniform(1.01, 1e6)
    elif kind == 'just_beyond':
        a[rng.integers(3)] = rng.choice([-1, 1]) * JUST_BEYOND
    elif kind == 'wrong_length':
        a = rng.uniform(-1, 1, int(rng.choice([1, 2, 4, 7, 100])))
    elif kind == 'empty':
        a = np.zeros(0)
    return a.tolist(), int(kind == 'stale_episode') * int(rng.integers(1, 5)), \
        -int(kind == 'stale_step') * int(rng.integers(1, 5))


def valid_action(kind: str, rng) -> np.ndarray:
    """A valid action of this kind, as float32 (what goes over the wire)."""
    a = rng.uniform(-1, 1, 3)
    i = rng.integers(3)
    if kind == 'at_bound':
        a[i] = rng.choice([-1.0, 1.0])
    elif kind == 'in_band':
        a[i] = rng.choice([-1.0, 1.0]) * IN_BAND
    return a.astype(np.float32)


def main():
    args = parse(__doc__)
    require_workspace()
    total = 1000 if args.quick else 10_000
    import rclpy

    from realrl_common.convert import to_f32
    from realrl_common.lifecycle import bring_up
    from realrl_common.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS
    from realrl_driver.core.safety import ActionGuard
    from realrl_interfaces.msg import Action, DriverStatus, Observation, RewardLabel

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
        teleop = rclpy.create_node('teleop')
        observations, statuses = [], []
        node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
        node.create_subscription(DriverStatus, '/arm0/status', statuses.append, STATUS_QOS)
        actions = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)
        teleop_actions = teleop.create_publisher(Action, '/arm0/action', COMMAND_QOS)
        labels = node.create_publisher(RewardLabel, '/arm0/reward_label', COMMAND_QOS)
        sent, sent_valid, sources = Counter(), Counter(), Counter()
        expected_applied = []  # per answered step: (the action the robot must get, or None)
        guard = ActionGuard([-1, -1, -1], [1, 1, 1])

        def send_valid(obs, a, intervention):
            actions.publish(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                                   action=to_f32(a), intervention=intervention))

        try:
            why = bring_up(node, '/arm0/driver', lambda t: rclpy.spin_once(node, timeout_sec=t),
                           timeout=30.0, alive=lambda: driver.poll() is None)
            assert not why, why
            answered, answer, answered_at = None, [], 0.0
            deadline = time.monotonic() + 600
            while sum(sent.values()) < total and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.002)
                if not observations:
                    continue
                obs = observations[-1]
                if (obs.episode_id, obs.step) != answered:  # keep the robot moving
                    if answered is not None and obs.episode_id != answered[0]:
                        expected_applied.pop()  # the episode ended: its last answer unused
                    answered, answered_at = (obs.episode_id, obs.step), time.monotonic()
                    kind, source = VALID[rng.integers(3)], SOURCES[rng.integers(3)]
                    a = valid_action(kind, rng)
                    assert guard.check(a, obs.episode_id, obs.step, obs.episode_id,
                                       obs.step).ok
                    answer = [(a, source != 'policy')]
                    if source == 'teleop_over_policy':  # the person's action must win
                        answer.append((rng.uniform(-1, 1, 3).astype(np.float32), False))
                    for act, intervention in answer:
                        send_valid(obs, act, intervention)
                    # what the robot must get; the policy's, only if DDS dropped the person's
                    expected_applied.append((guard.bounded(a).tolist(), guard.bounded(
                        answer[-1][0]).tolist() if len(answer) > 1 else None))
                    sent_valid[kind] += 1
                    sources[source] += 1
                    labels.publish(RewardLabel(robot_id='arm0', episode_id=obs.episode_id,
                                               step=obs.step, reward=-1.0))
                elif time.monotonic() - answered_at > 0.5:  # lost in the flood: send it again
                    answered_at = time.monotonic()
                    for act, intervention in answer:
                        send_valid(obs, act, intervention)
                    labels.publish(RewardLabel(robot_id='arm0', episode_id=obs.episode_id,
                                               step=obs.step, reward=-1.0))
                kind = KINDS[int(rng.integers(len(KINDS)))]
                a, de, ds = bad_action(kind, rng)
                episode, step = obs.episode_id + de, obs.step + ds
                if step < 0:  # ahead instead: the driver may be one step past what we saw
                    step = obs.step + 2 - ds
                from_teleop = bool(rng.integers(2))
                msg = Action(robot_id='arm0', episode_id=episode, step=step,
                             intervention=from_teleop)
                msg.action = to_f32(a)
                (teleop_actions if from_teleop else actions).publish(msg)
                sent[kind] += 1
                guard.check(a, episode, step, obs.episode_id, obs.step)
                time.sleep(0.0005)
            time.sleep(1.0)
            rclpy.spin_once(node, timeout_sec=0.5)
            steps = statuses[-1].steps if statuses else 0
        finally:
            teleop.destroy_node()
            node.destroy_node()
            rclpy.try_shutdown()
            stop_process(driver)
        log = (Path(tmp) / 'driver.log').read_text()
        exit_line = log.split(' rejected: ', 1)[1].splitlines()[0] if ' rejected: ' in log else ''
        counted = json.loads(exit_line.split(' actions lost: ')[0]) if exit_line else {}
        counters = json.loads(log.split('counters: ', 1)[1].split(' rejected: ')[0]) \
            if 'counters: ' in log else {}
        applied = [json.loads(x) for x in applied_log.read_text().splitlines()]
    arr = [np.asarray(a, float) for a in applied]
    violations = sum(1 for a in arr if a.shape != (3,) or not np.all(np.isfinite(a))
                     or np.any(np.abs(a) > 1.0))
    # the robot applies one action per step, in step order; the newest may still be pending
    mismatched = sum(1 for got, (want, alt) in zip(applied, expected_applied)
                     if got != want and got != alt)
    outranked = sum(1 for got, (want, alt) in zip(applied, expected_applied)
                    if got != want and got == alt)
    missing = max(0, len(expected_applied) - 1 - len(applied))
    extra = max(0, len(applied) - len(expected_applied))
    expected = Counter()
    for kind, n in sent.items():
        expected[EXPECTED[kind]] += n
    rejected = sum(counted.values())
    shortfall = {r: n - counted.get(r, 0) for r, n in expected.items() if counted.get(r, 0) < n}
    print(f'sent {sum(sent.values())} bad messages {dict(sent)}, from the policy and the teleop '
          f'writer; the robot applied {len(applied)} actions over {steps} steps, {violations} '
          f'outside the limits')
    clipped = counters.get('clipped_into_bounds')
    print(f'valid actions: {dict(sent_valid)} from {dict(sources)}; applied other than sent: '
          f'{mismatched}, not applied: {missing}, applied unasked: {extra}; the policy\'s '
          f'applied because the person\'s was lost: {outranked}; set onto a bound from the '
          f'tolerance band: {clipped} (sent in the band: {sent_valid["in_band"]})')
    print(f'driver counted {rejected} rejections {counted}; expected at least {dict(expected)}'
          f'{"; MISSING " + str(shortfall) if shortfall else ""}')
    print(f'baseline ActionGuard in-process on the same messages: rejected {guard.rejected_total} '
          f'{dict(guard.rejected)}')
    emit({'messages': sum(sent.values()), 'violations': violations, 'rejected': rejected,
          'rejected_by_reason': counted, 'applied': len(applied),
          'uncounted': sum(shortfall.values()), 'baseline_guard_rejected': guard.rejected_total,
          'valid_sent': dict(sent_valid), 'valid_sources': dict(sources),
          'valid_mismatched': mismatched + missing + extra, 'intervention_lost': outranked,
          'clipped_into_bounds': clipped})


if __name__ == '__main__':
    main()
