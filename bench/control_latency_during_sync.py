"""Observation -> action latency through the policy node while a 100M-parameter weight sync runs.

The control loop: the real ``policy_node`` (its own process, DDS) answers observations this
process publishes at 20 Hz for a 10-dimensional robot (its description published latched
first); the latency is from publishing an observation to receiving the action for it (same
process clock). The load: ``bench/_sync_worker.py`` syncing a state dict of 100M float32
parameters (400 MB) back to back over a mutually authenticated Zenoh link on loopback
(``WeightServer`` -> ``WeightReceiver``: CRC-checked 1 MiB chunks, decoding), the traffic an
edge machine carries when its policy's weights are replaced: paced to the link's budget
(100 Mbit/s) and at nice 10, as the sync is meant to run (--unpaced: as fast as loopback
allows, at the policy's priority, to show what the regulation buys).

Windows alternate idle / syncing (ABAB, ``window_s`` each), so both see the same machine
load from everything else: ``p99_ms_idle`` and ``p99_ms_syncing`` over all samples of
their windows, ``delta_ms`` their difference; medians are printed too. Left out: swapping
the received weights into the policy (today the policy takes weights over DDS), a GPU,
another network than loopback. 10M parameters with --quick.

    .venv/bin/python bench/control_latency_during_sync.py [--quick]
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time

import _util
import numpy as np

DOMAIN = 182
STATE_DIM, ACTION_DIM = 10, 3


class ControlLoop:
    """Publishes observations at 20 Hz to the policy node; the latency of each answer."""

    def __init__(self):
        import rclpy

        from realrl_common.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
        from realrl_interfaces.msg import Action, Observation, RobotDescription
        rclpy.init()
        self.node = rclpy.create_node('control_latency_bench')
        self.Observation = Observation
        self.sent: dict[int, float] = {}
        self.latency: list[tuple[float, float]] = []   # (time, seconds)
        self.step = 0
        self._lock = threading.Lock()
        desc = self.node.create_publisher(RobotDescription, '/arm0/description', LATCHED_QOS)
        desc.publish(RobotDescription(
            robot_id='arm0', kind='bench', control_hz=20.0, state_dim=STATE_DIM,
            state_names=['joints'], state_starts=[0], state_stops=[STATE_DIM],
            action_dim=ACTION_DIM, action_low=[-1.0] * ACTION_DIM,
            action_high=[1.0] * ACTION_DIM, action_units='rad', episode_max_steps=50))
        self.obs_pub = self.node.create_publisher(Observation, '/arm0/observation', SENSOR_QOS)
        self.node.create_subscription(Action, '/arm0/action', self._on_action, COMMAND_QOS)
        self.node.create_timer(0.05, self._tick)
        self._rng = np.random.default_rng(0)
        self._spin = threading.Thread(target=rclpy.spin, args=(self.node,), daemon=True)
        self._spin.start()

    def _tick(self) -> None:
        self.step += 1
        msg = self.Observation(robot_id='arm0', episode_id=0, step=self.step,
                               state=self._rng.standard_normal(STATE_DIM).astype(
                                   np.float32).tolist())
        with self._lock:
            self.sent[self.step] = time.perf_counter()
        self.obs_pub.publish(msg)

    def _on_action(self, msg) -> None:
        now = time.perf_counter()
        with self._lock:
            t0 = self.sent.pop(msg.step, None)
            if t0 is not None:
                self.latency.append((now, now - t0))

    def samples(self, since: float, until: float) -> list[float]:
        with self._lock:
            return [s for t, s in self.latency if since <= t <= until]

    def close(self) -> None:
        import rclpy
        rclpy.try_shutdown()
        self._spin.join(5)


def start_worker(params: int, paced: bool) -> subprocess.Popen:
    rate, nice = ('12.5e6', '10') if paced else ('0', '0')
    p = subprocess.Popen([sys.executable, str(_util.ROOT / 'bench' / '_sync_worker.py'),
                          str(params), rate, nice], stdout=subprocess.PIPE, text=True,
                         cwd=_util.ROOT)
    line = p.stdout.readline()
    if line.strip() != 'ready':
        p.kill()
        raise RuntimeError(f'sync worker did not start: {line!r}')
    return p


def main() -> None:
    args = _util.parse(__doc__.split('\n')[0], lambda p: p.add_argument(
        '--unpaced', action='store_true', help='sync flat out at the policy\'s priority'))
    _util.require_workspace()
    params, window_s = (10_000_000, 10.0) if args.quick else (100_000_000, 30.0)
    env = _util.bench_env(DOMAIN)
    import os
    os.environ.update(ROS_DOMAIN_ID=env['ROS_DOMAIN_ID'],
                      ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    policy = _util.start_process(
        [str(_util.ROOT / 'install' / 'realrl_policy' / 'lib' / 'realrl_policy' / 'policy_node'),
         '--ros-args', '-p', 'robot_ids:=[arm0]'], env, _util.ROOT / 'bench_policy.log')
    loop = ControlLoop()
    idle, syncing, syncs, moved = [], [], [], 0
    try:
        deadline = time.monotonic() + 60
        while not loop.samples(0, float('inf')) and time.monotonic() < deadline:
            time.sleep(0.5)
        if not loop.samples(0, float('inf')):
            raise RuntimeError('the policy node never answered; see bench_policy.log')
        time.sleep(2.0)
        for _ in range(2):
            t0 = time.perf_counter()
            time.sleep(window_s)
            idle += loop.samples(t0, time.perf_counter())
            worker = start_worker(params, not args.unpaced)
            try:
                t0 = time.perf_counter()
                time.sleep(window_s)
                syncing += loop.samples(t0, time.perf_counter())
            finally:
                worker.terminate()
                out, _ = worker.communicate(timeout=60)
                syncs += [float(x.split()[1]) for x in out.splitlines() if x.startswith('synced')]
                moved += sum(int(x.split()[1]) for x in out.splitlines() if x.startswith('bytes'))
    finally:
        loop.close()
        _util.stop_process(policy)
        (_util.ROOT / 'bench_policy.log').unlink(missing_ok=True)
    p99_idle = _util.percentile(idle, 99) * 1e3
    p99_sync = _util.percentile(syncing, 99) * 1e3
    print(f'observation -> action, {len(idle)} idle / {len(syncing)} syncing samples: median '
          f'{statistics.median(idle) * 1e3:.2f} / {statistics.median(syncing) * 1e3:.2f} ms, '
          f'p99 {p99_idle:.2f} / {p99_sync:.2f} ms; {len(syncs)} syncs of {params / 1e6:g}M '
          f'parameters completed (median {statistics.median(syncs) if syncs else float("nan"):.1f}'
          f' s), {moved / 1e6:.0f} MB sent while measuring')
    _util.emit({'p99_ms_idle': round(p99_idle, 3), 'p99_ms_syncing': round(p99_sync, 3),
                'delta_ms': round(p99_sync - p99_idle, 3), 'params': params,
                'paced': not args.unpaced,
                'syncs_completed': len(syncs), 'sync_mb_sent': round(moved / 1e6),
                'samples_idle': len(idle),
                'samples_syncing': len(syncing)})


if __name__ == '__main__':
    main()
