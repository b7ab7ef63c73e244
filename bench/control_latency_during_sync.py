"""Observation -> action latency through the policy node while a 100M-parameter weight sync runs.

The control loop: the real ``policy_node`` (its own process, DDS) answers observations this
process publishes at 20 Hz for a 10-dimensional robot (its description published latched
first); the latency is from publishing an observation to receiving the action for it (same
process clock). The load: ``bench/_sync_worker.py`` syncing a state dict of 100M float32
parameters (400 MB) back to back over a mutually authenticated Zenoh link on loopback
(``WeightServer`` -> ``WeightReceiver``: checksummed 1 MiB chunks, decoding), the traffic an
edge machine carries when its policy's weights are replaced: paced to the link's budget
(100 Mbit/s) and at nice 10, as the sync is meant to run (--unpaced: as fast as loopback
allows, at the policy's priority, to show what the regulation buys).

Windows alternate idle / syncing (ABAB..., ``--pairs`` pairs of ``window_s`` each), so
both see the same machine load from everything else: ``p99_ms_idle`` and
``p99_ms_syncing`` over all samples of their windows, ``delta_ms`` their difference;
medians, and the p99 of each pair (``pair_delta_ms``, their median
``median_pair_delta_ms``: a load spike in one window moves one pair, not the figure) are
printed too.

``--deliver``: the weights go on to the policy, as at an edge whose policy learns from the
cloud: the synced state dict is a real MLP actor of the same size (10 -> 3, 2048 wide), the
worker is the edge bridge's weights half (``EdgeWeights``: each version rebuilt as a blob
and published as WeightChunk messages over DDS) and the policy node joins, checks,
unpacks and swaps in every version while it answers observations. Before the first
window the policy is given one version, so idle and syncing windows run the same actor;
after each syncing window the next idle one waits until the policy has swapped in the
last version delivered (its loader's work fell into the idle window before, lowering
the delta).
Left out: a GPU, another network than loopback. 10M parameters with --quick.

    .venv/bin/python bench/control_latency_during_sync.py [--quick] [--deliver] [--pairs N]
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _util
import numpy as np

DOMAIN = 182
STATE_DIM, ACTION_DIM = 10, 3


class ControlLoop:
    """Publishes observations at 20 Hz to the policy node; the latency of each answer."""

    def __init__(self):
        import rclpy

        from realrl_common.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
        from realrl_interfaces.msg import Action, Observation, PolicyVersion, RobotDescription
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
        self.policy_version = 0
        self.node.create_subscription(PolicyVersion, '/policy/version', self._on_version,
                                      LATCHED_QOS)
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

    def _on_version(self, msg) -> None:
        self.policy_version = msg.version

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


def start_worker(params: int, paced: bool, deliver_from: int = 0,
                 site_mbit_s: float = 0.0) -> subprocess.Popen:
    """The sync worker; with ``deliver_from``, its versions (from that number) go on to the
    policy, published at ``site_mbit_s`` (0: unpaced)."""
    rate, nice = ('12.5e6', '10') if paced else ('0', '0')
    extra = ['deliver', str(deliver_from), str(site_mbit_s)] if deliver_from else []
    p = subprocess.Popen([sys.executable, str(_util.ROOT / 'bench' / '_sync_worker.py'),
                          str(params), rate, nice, *extra], stdout=subprocess.PIPE, text=True,
                         cwd=_util.ROOT)
    line = p.stdout.readline()
    if line.strip() != 'ready':
        p.kill()
        raise RuntimeError(f'sync worker did not start: {line!r}')
    return p


def give_first_version(loop: ControlLoop, params: int, timeout_s: float = 300) -> None:
    """Deliver one version to the policy (unpaced) so that every window runs its actor."""
    worker = start_worker(params, False, deliver_from=1)
    try:
        deadline = time.monotonic() + timeout_s
        while loop.policy_version < 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        if loop.policy_version < 1:
            raise RuntimeError('the policy never swapped in the first version')
    finally:
        worker.terminate()
        worker.communicate(timeout=60)


def settle(loop: ControlLoop, version: int, timeout_s: float = 30) -> None:
    """Wait until the policy has swapped in ``version`` (the last one the worker delivered
    before it stopped): its loader's work (joining, checking, unpacking, building the actor)
    must not fall into the next idle window."""
    deadline = time.monotonic() + timeout_s
    while loop.policy_version < version and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)      # the swap itself, and the first steps on the new actor


def options(p) -> None:
    p.add_argument('--unpaced', action='store_true',
                   help="sync flat out at the policy's priority")
    p.add_argument('--deliver', action='store_true',
                   help='the weights go on to the policy, which swaps each version in')
    p.add_argument('--pairs', type=int, default=4, help='idle/syncing window pairs')
    p.add_argument('--site-mbit-s', type=float, default=0.0,
                   help="with --deliver: the edge's budget for the WeightChunks it publishes "
                        'to the policy (weights.site_mbit_s; 0, the default: unpaced)')


def main() -> None:
    args = _util.parse(__doc__.split('\n')[0], options)
    if args.site_mbit_s < 0:
        sys.exit(f'bench: --site-mbit-s must be >= 0 (0: unpaced), got {args.site_mbit_s:g}')
    _util.require_workspace()
    params, window_s = (10_000_000, 10.0) if args.quick else (100_000_000, 30.0)
    env = _util.bench_env(DOMAIN)
    import os
    os.environ.update(ROS_DOMAIN_ID=env['ROS_DOMAIN_ID'],
                      ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    policy_log = Path(tempfile.mkdtemp(prefix='realrl-bench-latency-')) / 'policy.log'
    policy = _util.start_process(
        [str(_util.ROOT / 'install' / 'realrl_policy' / 'lib' / 'realrl_policy' / 'policy_node'),
         '--ros-args', '-p', 'robot_ids:=[arm0]'], env, policy_log)
    loop = ControlLoop()
    idle, syncing, syncs, moved, pairs = [], [], [], 0, []
    try:
        deadline = time.monotonic() + 60
        while not loop.samples(0, float('inf')) and time.monotonic() < deadline:
            time.sleep(0.5)
        if not loop.samples(0, float('inf')):
            raise RuntimeError(f'the policy node never answered; see {policy_log}')
        if args.deliver:
            give_first_version(loop, params)
        time.sleep(2.0)
        for pair in range(args.pairs):
            t0 = time.perf_counter()
            time.sleep(window_s)
            a = loop.samples(t0, time.perf_counter())
            worker = start_worker(params, not args.unpaced,
                                  deliver_from=1000 * (pair + 1) if args.deliver else 0,
                                  site_mbit_s=args.site_mbit_s)
            try:
                t0 = time.perf_counter()
                time.sleep(window_s)
                b = loop.samples(t0, time.perf_counter())
            finally:
                worker.terminate()
                out, _ = worker.communicate(timeout=60)
                synced = [x.split() for x in out.splitlines() if x.startswith('synced')]
                syncs += [float(x[1]) for x in synced]
                moved += sum(int(x.split()[1]) for x in out.splitlines() if x.startswith('bytes'))
            if args.deliver and synced:
                settle(loop, int(synced[-1][2]))
            idle += a
            syncing += b
            pairs.append((_util.percentile(a, 99) * 1e3, _util.percentile(b, 99) * 1e3))
            print(f'pair {pair + 1}: p99 idle {pairs[-1][0]:.2f} ms, syncing {pairs[-1][1]:.2f} '
                  f'ms (policy at v{loop.policy_version})', flush=True)
    finally:
        loop.close()
        _util.stop_process(policy)
    report(args, params, idle, syncing, syncs, moved, pairs, loop.policy_version)


def report(args, params, idle, syncing, syncs, moved, pairs, version) -> None:
    p99_idle = _util.percentile(idle, 99) * 1e3
    p99_sync = _util.percentile(syncing, 99) * 1e3
    pair_deltas = [b - a for a, b in pairs]
    print(f'observation -> action, {len(idle)} idle / {len(syncing)} syncing samples: median '
          f'{statistics.median(idle) * 1e3:.2f} / {statistics.median(syncing) * 1e3:.2f} ms, '
          f'p99 {p99_idle:.2f} / {p99_sync:.2f} ms; {len(syncs)} syncs of {params / 1e6:g}M '
          f'parameters completed (median {statistics.median(syncs) if syncs else float("nan"):.1f}'
          f' s), {moved / 1e6:.0f} MB sent while measuring; per-pair p99 deltas '
          f'{[round(d, 2) for d in pair_deltas]} ms')
    _util.emit({'p99_ms_idle': round(p99_idle, 3), 'p99_ms_syncing': round(p99_sync, 3),
                'delta_ms': round(p99_sync - p99_idle, 3),
                'median_pair_delta_ms': round(statistics.median(pair_deltas), 3),
                'pair_delta_ms': [round(d, 3) for d in pair_deltas],
                'median_ms_idle': round(statistics.median(idle) * 1e3, 3),
                'median_ms_syncing': round(statistics.median(syncing) * 1e3, 3),
                'params': params, 'paced': not args.unpaced, 'delivered': args.deliver,
                'site_mbit_s': args.site_mbit_s if args.deliver else None,
                'policy_version': version,
                'syncs_completed': len(syncs), 'sync_mb_sent': round(moved / 1e6),
                'samples_idle': len(idle),
                'samples_syncing': len(syncing)})


if __name__ == '__main__':
    main()
