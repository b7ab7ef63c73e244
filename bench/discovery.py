"""The hardware manager: 4 simulated robots discovered and brought up, one SIGKILLed, restarted.

Each repetition runs on a fresh ROS domain (localhost discovery). The hardware manager starts
first, with no list of robots. Then 4 MuJoCo arm drivers (arm0..arm3) are started at once
(t = 0), unconfigured, as a robot's computer would start them. Figures:

- discover_4_s: t = 0 -> the manager reports all 4 described, healthy and active (median);
- unhealthy_after_kill_s: arm0 (leased) is SIGKILLed -> reported unhealthy, its lease freed;
- readmit_s: arm0 is started again -> reported re-admitted (described, healthy, active).

Baselines, measured in the same run by a bare rclpy node (this process) on the same domain,
which only watches and so bounds what any manager can do:

- graph_4_s: t = 0 -> the 4 drivers' lifecycle services are listed in its graph (the
  drivers' own start-up and DDS discovery; a driver serves ~/describe only once configured);
- heartbeat_back_s: restart -> first heartbeat of the new arm0 received;
- silence_s: how long arm0 had been silent (since its last heartbeat) when the manager
  reported it unhealthy (the manager's heartbeat_timeout_s is 0.6 s).

Every process uses config/fastdds.xml (scripts/env.sh sets it: participants announce every
0.5 s); --fastdds-defaults runs with Fast DDS's own defaults (every 3 s) for comparison.

    .venv/bin/python bench/discovery.py [--quick] [--fastdds-defaults] [--logs DIR]
"""
from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _util import ROOT, emit, parse, require_workspace, start_process, stop_process

ROBOTS = ('arm0', 'arm1', 'arm2', 'arm3')
TARGETS = {'discover_4_s': 2.0, 'unhealthy_after_kill_s': 1.0, 'readmit_s': 2.0}
LIB = ROOT / 'install'


def _reexec_with_workspace() -> None:
    """The probe needs the workspace's messages: run again inside scripts/env.sh."""
    try:
        import realrl_interfaces  # noqa: F401
    except ImportError:
        os.execvp('bash', ['bash', '-c', f'source {ROOT}/scripts/env.sh && exec python "$@"',
                           'bash', *sys.argv])


class Probe:
    """A bare rclpy node on the repetition's domain: heartbeats, the graph, the manager's
    report."""

    def __init__(self, domain: int):
        import rclpy

        from realrl_common.qos import LATCHED_QOS, STATUS_QOS
        from realrl_interfaces.msg import DriverStatus, RobotStates
        from realrl_interfaces.srv import AcquireLease
        self._rclpy = rclpy
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, domain_id=domain)
        self.node = rclpy.create_node('bench_probe', context=self.ctx)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.report = None
        self.heartbeat_at: dict[str, float] = {}
        self.node.create_subscription(RobotStates, '/hardware_manager/robots',
                                      lambda m: setattr(self, 'report', m), LATCHED_QOS)
        for rid in ROBOTS:
            self.node.create_subscription(
                DriverStatus, f'/{rid}/status',
                lambda m, rid=rid: self.heartbeat_at.__setitem__(rid, time.monotonic()),
                STATUS_QOS)
        self.acquire_client = self.node.create_client(AcquireLease,
                                                      '/hardware_manager/acquire_lease')
        self._AcquireLease = AcquireLease

    def rows(self) -> dict:
        return {r.robot_id: r for r in self.report.robots} if self.report else {}

    def table(self) -> str:
        from realrl_bringup.robots_cmd import format_robots
        return format_robots(self.report.robots) if self.report else '(no report)'

    def listed(self, rid: str) -> bool:
        names = {name for name, _ in self.node.get_service_names_and_types()}
        return f'/{rid}/driver/get_state' in names

    def until(self, predicate, timeout: float) -> float | None:
        """Spin until predicate() holds; the monotonic time it first held, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.005)
            if predicate():
                return time.monotonic()
        return None

    def acquire(self, robot_ids, holder: str):
        req = self._AcquireLease.Request(robot_ids=list(robot_ids), holder=holder, ttl_s=60.0)
        self.until(self.acquire_client.service_is_ready, 10)
        future = self.acquire_client.call_async(req)
        self.until(future.done, 10)
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.ctx)


def serving(row, more_than: int = 0) -> bool:
    """Described, healthy and active, admitted more than ``more_than`` times."""
    return (row is not None and row.described and row.healthy
            and row.lifecycle_state == 'active' and row.admissions > more_than)


def repetition(domain: int, logs: Path, rep: int) -> dict:
    env = os.environ.copy()
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    driver_exe = str(LIB / 'realrl_driver/lib/realrl_driver/mujoco_arm_driver')

    def driver(rid: str, n: int):
        return start_process([driver_exe, '--ros-args', '-r', f'__ns:=/{rid}',
                              '-p', f'robot_id:={rid}', '-p', 'replay_wait_s:=0.0'],
                             env, logs / f'{rep}.{rid}.{n}.log')

    probe = Probe(domain)
    manager = start_process([str(LIB / 'realrl_hardware/lib/realrl_hardware/hardware_manager')],
                            env, logs / f'{rep}.manager.log')
    drivers = {}
    out = {}
    try:
        if probe.until(lambda: probe.report is not None, 30) is None:
            raise RuntimeError(f'the hardware manager did not report; see {logs}')
        t0 = time.monotonic()
        drivers = {rid: driver(rid, 1) for rid in ROBOTS}
        marks = {}
        probe.until(lambda: all([
            _mark(marks, 'graph', t0, all(probe.listed(r) for r in ROBOTS)),
            _mark(marks, 'ready', t0, all(serving(probe.rows().get(r)) for r in ROBOTS))]), 60)
        out['discover_4_s'], out['graph_4_s'] = marks.get('ready'), marks.get('graph')
        if out['discover_4_s'] is None:
            raise RuntimeError(f'not all 4 robots became active in 60 s:\n{probe.table()}')

        lease = probe.acquire(['arm0'], 'bench')
        assert lease.granted, lease.message
        if probe.until(lambda: probe.rows()['arm0'].lease_holder == 'bench'
                       and 'arm0' in probe.heartbeat_at, 10) is None:
            raise RuntimeError('the lease or arm0\'s heartbeat did not reach the probe in 10 s')
        rows = probe.rows()
        out['flaps'] = sum(rows[r].admissions - 1 for r in ROBOTS)  # losses nobody caused
        before = rows['arm0'].admissions
        killed = time.monotonic()
        os.killpg(drivers['arm0'].pid, 9)
        last_beat = probe.heartbeat_at['arm0']
        unhealthy = probe.until(lambda: not probe.rows()['arm0'].healthy, 10)
        if unhealthy is None:
            raise RuntimeError(f'arm0 was not reported unhealthy within 10 s:\n{probe.table()}')
        out['unhealthy_after_kill_s'] = unhealthy - killed
        out['silence_s'] = unhealthy - last_beat
        out['lease_freed'] = probe.rows()['arm0'].lease_holder == ''

        drivers['arm0'].wait()
        restarted = time.monotonic()
        drivers['arm0'] = driver('arm0', 2)
        marks = {}
        probe.until(lambda: all([
            _mark(marks, 'beat', restarted, probe.heartbeat_at['arm0'] > restarted),
            _mark(marks, 'readmit', restarted, serving(probe.rows().get('arm0'), before))]),
            30)
        out['readmit_s'], out['heartbeat_back_s'] = marks.get('readmit'), marks.get('beat')
        if out['readmit_s'] is None:
            raise RuntimeError(f'arm0 was not re-admitted within 30 s:\n{probe.table()}')
    finally:
        for proc in [*drivers.values(), manager]:
            stop_process(proc)
        probe.close()
    return out


def _mark(marks: dict, key: str, t0: float, condition: bool) -> bool:
    """Record when condition first held (seconds after t0); True once it has."""
    if key not in marks and condition:
        marks[key] = time.monotonic() - t0
    return key in marks


def main():
    def options(p):
        p.add_argument('--logs', help="keep the processes' logs in this folder")
        p.add_argument('--fastdds-defaults', action='store_true',
                       help="Fast DDS's own defaults instead of config/fastdds.xml")
    args = parse(__doc__, options)
    require_workspace()
    _reexec_with_workspace()
    if args.fastdds_defaults:
        os.environ.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)  # before any participant exists
    profile = os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE', '')
    print(f'Fast DDS profile: {profile or "none (Fast DDS defaults)"}', flush=True)
    from realrl_bringup.shm_cleanup import remove_orphan_segments
    reps = 2 if args.quick else 5
    started = time.time()
    results = []
    base_domain = 150 + os.getpid() % 40
    with tempfile.TemporaryDirectory(prefix='realrl-bench-discovery-') as tmp:
        logs = Path(args.logs or tmp)
        logs.mkdir(parents=True, exist_ok=True)
        for rep in range(reps):
            try:
                r = repetition(base_domain + rep, logs, rep)
            except RuntimeError as e:
                kept = logs if args.logs else Path(shutil.copytree(tmp, f'{tmp}-failed'))
                sys.exit(f'bench: repetition {rep} failed: {e}\nlogs: {kept}')
            results.append(r)
            print(f'rep {rep}: 4 robots active {r["discover_4_s"]:.2f} s (graph lists them '
                  f'{r["graph_4_s"]:.2f} s); SIGKILL -> unhealthy '
                  f'{r["unhealthy_after_kill_s"]:.2f} s '
                  f'(silent {r["silence_s"]:.2f} s, lease freed: {r["lease_freed"]}); '
                  f'restart -> re-admitted {r["readmit_s"]:.2f} s (first heartbeat '
                  f'{r["heartbeat_back_s"]:.2f} s)', flush=True)
    remove_orphan_segments(since=started)  # what the SIGKILLed drivers left in /dev/shm

    def med(key):
        return round(statistics.median(r[key] for r in results), 3)

    summary = {key: med(key) for key in ('discover_4_s', 'unhealthy_after_kill_s', 'readmit_s')}
    print(f'\nmedian of {reps}:')
    for key, target in TARGETS.items():
        print(f'  {key:24s} {summary[key]:6.2f} s   (target <= {target:g} s)')
    base = {f'baseline_{k}': med(k) for k in ('graph_4_s', 'heartbeat_back_s', 'silence_s')}
    print(f'  baseline, bare rclpy node: drivers listed in the graph '
          f'{base["baseline_graph_4_s"]:.2f} s; '
          f'restarted arm0 first heartbeat {base["baseline_heartbeat_back_s"]:.2f} s; '
          f'arm0 silent {base["baseline_silence_s"]:.2f} s when reported unhealthy')
    print(f'  robots lost and re-admitted without being killed: '
          f'{sum(r["flaps"] for r in results)}')
    print(f'  manager overhead over the baseline: discovery '
          f'{summary["discover_4_s"] - base["baseline_graph_4_s"]:+.2f} s, re-admission '
          f'{summary["readmit_s"] - base["baseline_heartbeat_back_s"]:+.2f} s')
    emit({**summary, **base, 'repetitions': reps, 'fastdds_profile': Path(profile).name,
          'leases_freed': sum(r['lease_freed'] for r in results),
          'flaps': sum(r['flaps'] for r in results),
          'discover_4_s_all': [round(r['discover_4_s'], 3) for r in results],
          'readmit_s_all': [round(r['readmit_s'], 3) for r in results],
          'unhealthy_after_kill_s_all': [round(r['unhealthy_after_kill_s'], 3) for r in results]})


if __name__ == '__main__':
    main()
