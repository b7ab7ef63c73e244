"""The hardware manager over real DDS: drivers discovered and brought up, leases, a driver
SIGKILLed and restarted, a holder that stops renewing, and `realrl robots`."""
import subprocess
import time

from lifecycle_msgs.msg import Transition as LcTransition
from lifecycle_msgs.srv import ChangeState
from ros_env import Proc, executable, wait_for

from realrl_bringup.shm_cleanup import remove_orphan_segments
from realrl_common.qos import LATCHED_QOS
from realrl_interfaces.msg import RobotStates
from realrl_interfaces.srv import AcquireLease, ReleaseLease, RenewLease

ROBOTS = ('arm0', 'arm1', 'arm2')


def call(node, client, request, timeout=10.0):
    assert wait_for(client.service_is_ready, timeout, spin=node.spin), f'{client.srv_name} absent'
    future = client.call_async(request)
    assert wait_for(future.done, timeout, spin=node.spin), f'{client.srv_name} did not answer'
    return future.result()


class Hardware:
    """Driver processes and one hardware manager, all stopped at the end."""

    def __init__(self, node, tmp_path, *manager_params):
        self.node, self.tmp, self.started = node, tmp_path, time.time()
        self.drivers: dict[str, Proc] = {}
        self.starts = 0
        self.reports: list = []
        node.create_subscription(RobotStates, '/hardware_manager/robots', self.reports.append,
                                 LATCHED_QOS)
        self.manager = Proc([executable('realrl_hardware', 'hardware_manager'), '--ros-args',
                             *[a for p in manager_params for a in ('-p', p)]],
                            tmp_path / 'manager.log')
        self.clients = {srv: node.create_client(srv, f'/hardware_manager/{name}') for srv, name in
                        ((AcquireLease, 'acquire_lease'), (RenewLease, 'renew_lease'),
                         (ReleaseLease, 'release_lease'))}

    def start(self, rid):
        self.starts += 1
        self.drivers[rid] = Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args',
                                  '-r', f'__ns:=/{rid}', '-p', f'robot_id:={rid}',
                                  '-p', 'replay_wait_s:=0.0'],
                                 self.tmp / f'{rid}.{self.starts}.log')

    def rows(self) -> dict:
        return {r.robot_id or r.driver: r for r in self.reports[-1].robots} if self.reports else {}

    def wait(self, predicate, timeout, what):
        ok = wait_for(lambda: bool(self.reports) and predicate(self.rows()), timeout,
                      spin=self.node.spin)
        assert ok, f'{what}; last report: {self.table()}\n{self.manager.output()[-3000:]}'

    def table(self):
        return '\n'.join(f'  {k}: {r.lifecycle_state} healthy={r.healthy} {r.health!r} '
                         f'holder={r.lease_holder!r} admissions={r.admissions}'
                         for k, r in self.rows().items())

    def acquire(self, robot_ids, holder, ttl_s):
        return call(self.node, self.clients[AcquireLease],
                    AcquireLease.Request(robot_ids=list(robot_ids), holder=holder, ttl_s=ttl_s))

    def renew(self, lease_id):
        return call(self.node, self.clients[RenewLease], RenewLease.Request(lease_id=lease_id))

    def stop(self):
        for proc in self.drivers.values():
            proc.stop()
        code = self.manager.stop()
        remove_orphan_segments(since=self.started)  # what SIGKILLed drivers left in /dev/shm
        return code


def serving(row, admissions=1):
    return (row.described and row.healthy and row.lifecycle_state == 'active'
            and row.health == 'ok' and row.admissions == admissions)


def test_discovery_leases_sigkill_and_readmission(ros_node, tmp_path):
    hw = Hardware(ros_node, tmp_path, 'expected_robots:=[arm0, arm1, arm2, arm9]')
    try:
        for rid in ROBOTS:
            hw.start(rid)
        hw.wait(lambda rows: all(rid in rows and serving(rows[rid]) for rid in ROBOTS), 30,
                'drivers not all discovered, described and active')
        rows = hw.rows()
        assert rows['arm9'].lifecycle_state == 'missing' and not rows['arm9'].healthy
        arm0 = rows['arm0']
        assert (arm0.kind, arm0.driver, arm0.description.state_dim, arm0.control_hz) == \
            ('mujoco_arm', '/arm0/driver', 17, 10.0)

        a = hw.acquire(['arm0'], 'exp_a', 30.0)
        assert a.granted and a.lease_id, a.message
        b = hw.acquire(['arm0', 'arm1'], 'exp_b', 30.0)
        assert not b.granted and "arm0: leased by 'exp_a'" in b.message
        c = hw.acquire(['arm1'], 'exp_b', 2.0)  # all or nothing: arm1 was still free
        granted_c = time.monotonic()
        assert c.granted, c.message
        hw.wait(lambda rows: rows['arm0'].lease_holder == 'exp_a'
                and rows['arm1'].lease_holder == 'exp_b', 5, 'leases not reported')

        killed = time.monotonic()
        hw.drivers['arm0'].kill()  # SIGKILL: no goodbye on the graph
        hw.wait(lambda rows: not rows['arm0'].healthy, 3, 'arm0 not marked unhealthy')
        assert time.monotonic() - killed < 1.5
        assert hw.rows()['arm0'].lease_holder == ''
        renew = hw.renew(a.lease_id)
        assert not renew.ok and 'revoked: arm0 lost (no heartbeat' in renew.message

        # exp_b never renews its 2 s lease: it ends on time.
        hw.wait(lambda rows: rows['arm1'].lease_holder == '', 4, 'expired lease still held')
        assert 1.5 < time.monotonic() - granted_c < 3.5
        assert 'expired' in hw.renew(c.lease_id).message

        hw.drivers['arm0'].stop()
        restarted = time.monotonic()
        hw.start('arm0')
        hw.wait(lambda rows: serving(rows['arm0'], admissions=2), 20, 'arm0 not re-admitted')
        readmit_s = time.monotonic() - restarted
        d = hw.acquire(['arm0', 'arm1'], 'exp_c', 30.0)
        assert d.granted, d.message

        out = subprocess.run([executable('realrl_bringup', 'realrl'), 'robots', '--wait-s', '10'],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].split() == ['ROBOT', 'KIND', 'STATE', 'HOLDER', 'RATE', 'HZ', 'HEALTH']
        arm0_line = next(line for line in lines if line.startswith('arm0 '))
        assert arm0_line.split()[:4] == ['arm0', 'mujoco_arm', 'active', 'exp_c'], out.stdout
        assert 'arm9' in out.stdout and 'missing' in out.stdout
        print(f'unhealthy after kill, lease freed; re-admitted {readmit_s:.2f} s after restart')
    finally:
        assert hw.stop() in (0, -2, 130), hw.manager.output()[-3000:]


def test_watch_only_admits_a_driver_someone_else_configured(ros_node, tmp_path):
    hw = Hardware(ros_node, tmp_path, 'activate:=false')
    try:
        hw.start('arm0')
        hw.wait(lambda rows: '/arm0/driver' in rows and rows['/arm0/driver'].healthy, 20,
                'driver not found')
        ros_node.spin(0.5)
        row = hw.rows()['/arm0/driver']
        assert row.lifecycle_state == 'unconfigured'
        assert row.health == 'not described yet (unconfigured)'
        refused = hw.acquire(['arm0'], 'exp', 0.0)
        assert not refused.granted and 'arm0: no such robot' in refused.message
        req = ChangeState.Request()
        req.transition.id = LcTransition.TRANSITION_CONFIGURE
        assert call(ros_node, ros_node.create_client(ChangeState, '/arm0/driver/change_state'),
                    req).success
        hw.wait(lambda rows: 'arm0' in rows and rows['arm0'].described
                and rows['arm0'].lifecycle_state == 'inactive',
                5, 'configured driver not admitted')
        assert hw.acquire(['arm0'], 'exp', 0.0).granted
    finally:
        assert hw.stop() in (0, -2, 130), hw.manager.output()[-3000:]


def test_realrl_robots_without_a_manager_says_so(ros_domain):
    out = subprocess.run([executable('realrl_bringup', 'realrl'), 'robots', '--wait-s', '0.5'],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert 'no hardware manager answered on /hardware_manager/robots' in out.stdout
    assert f'ROS_DOMAIN_ID={ros_domain}' in out.stdout
