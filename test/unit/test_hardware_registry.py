"""The hardware manager's core: health from heartbeats, leases, re-admission (injected clock)."""
import pytest

from realrl_common.config import ConfigError, build_config
from realrl_hardware.registry import Registry, RegistryConfig


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t

    def advance(self, dt):
        self.t += dt


def make(**cfg):
    clock = Clock()
    ids = iter(f'L{i}' for i in range(1, 100))
    return Registry(RegistryConfig(**cfg), clock, new_lease_id=lambda: next(ids)), clock


def up(reg, rid, kind='mujoco_arm', state='active'):
    """A driver /<rid>/driver that heartbeats and has been described."""
    fqn = f'/{rid}/driver'
    reg.discover(fqn)
    reg.on_heartbeat(fqn, state, 10.0)
    reg.on_description(fqn, rid, kind, 10.0, description={'robot_id': rid})
    return fqn


def row(reg, rid):
    rows = [r for r in reg.robots() if r.robot_id == rid]
    assert len(rows) == 1, rows
    return rows[0]


def beat(reg, clock, fqns, seconds, state='active', period=0.2):
    """Heartbeats from fqns every period for seconds, ticking the registry as the node does."""
    for _ in range(round(seconds / period)):
        clock.advance(period)
        for fqn in fqns:
            reg.on_heartbeat(fqn, state, 10.0)
        reg.tick()


def test_discovered_described_driver_is_admitted_and_listed():
    reg, clock = make()
    assert reg.discover('/arm0/driver') and not reg.discover('/arm0/driver')
    r = reg.robots()[0]
    assert (r.robot_id, r.driver, r.healthy, r.health) == ('', '/arm0/driver', False,
                                                           'no heartbeat yet')
    reg.on_heartbeat('/arm0/driver', 'active', 9.5)
    assert reg.needs_description('/arm0/driver')
    reg.on_description('/arm0/driver', 'arm0', 'mujoco_arm', 10.0, description='desc')
    r = row(reg, 'arm0')
    assert (r.kind, r.lifecycle_state, r.described, r.healthy, r.health, r.admissions) == \
        ('mujoco_arm', 'active', True, True, 'ok', 1)
    assert (r.achieved_hz, r.control_hz, r.description, r.lease_holder) == (9.5, 10.0, 'desc', '')
    assert not reg.needs_description('/arm0/driver')
    assert any('arm0: admitted' in e for e in reg.drain_events())


def test_unconfigured_driver_is_not_described_and_cannot_be_leased():
    reg, clock = make()
    reg.on_heartbeat('/arm0/driver', 'unconfigured', 0.0)
    assert not reg.needs_description('/arm0/driver')  # no describe service before configure
    reply = reg.acquire(['arm0'], 'exp')
    assert not reply.ok and 'no such robot' in reply.message


def test_missing_heartbeats_make_a_robot_unhealthy_and_free_its_lease():
    reg, clock = make(heartbeat_timeout_s=0.6)
    fqn = up(reg, 'arm0')
    lease = reg.acquire(['arm0'], 'exp_a', ttl_s=30)
    assert lease.ok and row(reg, 'arm0').lease_holder == 'exp_a'
    clock.advance(0.59)
    reg.tick()
    assert row(reg, 'arm0').healthy
    clock.advance(0.02)
    reg.tick()
    r = row(reg, 'arm0')
    assert (r.healthy, r.described, r.lease_holder) == (False, False, '')
    assert r.health.startswith('no heartbeat for 0.6')
    renew = reg.renew(lease.lease_id)
    assert not renew.ok and 'revoked' in renew.message and 'arm0' in renew.message
    assert not reg.needs_description(fqn)
    assert reg.is_lost(fqn)


def test_acquisition_is_all_or_nothing_and_names_the_holder():
    reg, clock = make()
    up(reg, 'arm0')
    up(reg, 'arm1')
    assert reg.acquire(['arm0'], 'exp_a', ttl_s=30).ok
    refused = reg.acquire(['arm0', 'arm1'], 'exp_b', ttl_s=30)
    assert not refused.ok and refused.lease_id == ''
    assert "arm0: leased by 'exp_a'" in refused.message and 'arm1' not in refused.message
    assert row(reg, 'arm1').lease_holder == ''  # nothing was taken
    assert reg.acquire(['arm1'], 'exp_b').ok
    assert row(reg, 'arm1').lease_expires_in_s == pytest.approx(10.0)  # default_ttl_s


def test_lease_expires_unless_renewed_and_a_silent_holder_loses_all_its_leases():
    reg, clock = make()
    fqns = [up(reg, r) for r in ('arm0', 'arm1', 'arm2')]
    a = reg.acquire(['arm0'], 'exp_a', ttl_s=2.0)
    b = reg.acquire(['arm1', 'arm2'], 'exp_a', ttl_s=2.0)
    beat(reg, clock, fqns, 1.6)
    assert reg.renew(a.lease_id).expires_in_s == pytest.approx(2.0)
    beat(reg, clock, fqns, 1.0)  # b: 2.6 s since granted, never renewed
    assert [row(reg, r).lease_holder for r in ('arm0', 'arm1', 'arm2')] == ['exp_a', '', '']
    renew = reg.renew(b.lease_id)
    assert not renew.ok and 'expired' in renew.message and 'ttl of 2 s' in renew.message
    beat(reg, clock, fqns, 1.2)  # a: not renewed for 2.2 s
    assert row(reg, 'arm0').lease_holder == ''
    assert reg.acquire(['arm0', 'arm1', 'arm2'], 'exp_b').ok  # all free again


def test_renew_with_a_new_ttl_release_and_unknown_leases():
    reg, clock = make(max_ttl_s=60)
    up(reg, 'arm0')
    lease = reg.acquire(['arm0'], 'exp', ttl_s=5)
    assert reg.renew(lease.lease_id, ttl_s=20).expires_in_s == 20
    bad = reg.renew(lease.lease_id, ttl_s=100)
    assert not bad.ok and 'ttl_s must be in (0, 60]' in bad.message
    assert reg.release(lease.lease_id).ok
    again = reg.release(lease.lease_id)
    assert not again.ok and 'was released' in again.message
    unknown = reg.renew('nope')
    assert not unknown.ok and 'unknown lease' in unknown.message
    assert 'acquire a new' in unknown.message


@pytest.mark.parametrize('ids, holder, ttl, expect', [
    (['arm0'], '', 0, 'holder is empty'),
    ([], 'exp', 0, 'robot_ids is empty'),
    (['arm0', 'arm0'], 'exp', 0, "lists ['arm0'] more than once"),
    (['arm0'], 'exp', -1, 'ttl_s must be in'),
    (['arm7'], 'exp', 0, "arm7: no such robot (known: ['arm0'])"),
])
def test_bad_lease_requests_name_the_field(ids, holder, ttl, expect):
    reg, clock = make()
    up(reg, 'arm0')
    reply = reg.acquire(ids, holder, ttl)
    assert not reply.ok and expect in reply.message


def test_a_restarted_driver_is_readmitted_once_described_again():
    reg, clock = make()
    fqn = up(reg, 'arm0')
    reg.acquire(['arm0'], 'exp_a', ttl_s=30)
    clock.advance(0.7)
    reg.tick()  # killed: unhealthy, lease freed
    clock.advance(1.0)
    reg.on_heartbeat(fqn, 'unconfigured', 0.0)  # the new process
    r = row(reg, 'arm0')
    assert r.healthy and not r.described and r.health == 'not described yet (unconfigured)'
    assert not reg.needs_description(fqn)
    assert not reg.acquire(['arm0'], 'exp_b').ok
    reg.set_lifecycle_state(fqn, 'active')  # brought up
    assert reg.needs_description(fqn)
    reg.on_description(fqn, 'arm0', 'mujoco_arm', 10.0)
    r = row(reg, 'arm0')
    assert (r.healthy, r.described, r.admissions, r.health) == (True, True, 2, 'ok')
    assert any('arm0: re-admitted' in e for e in reg.drain_events())
    assert reg.acquire(['arm0'], 'exp_b').ok


def test_a_driver_that_goes_unconfigured_loses_its_robot_without_missing_a_heartbeat():
    reg, clock = make()
    fqn = up(reg, 'arm0')
    lease = reg.acquire(['arm0'], 'exp_a')
    reg.on_heartbeat(fqn, 'unconfigured', 0.0)
    assert row(reg, 'arm0').lease_holder == ''
    assert 'unconfigured' in reg.renew(lease.lease_id).message


def test_a_hiccup_in_heartbeats_needs_a_new_description():
    reg, clock = make()
    fqn = up(reg, 'arm0')
    clock.advance(1.0)
    reg.tick()
    reg.on_heartbeat(fqn, 'active', 10.0)  # same process, heartbeats resume
    assert reg.needs_description(fqn) and not row(reg, 'arm0').described
    reg.on_description(fqn, 'arm0', 'mujoco_arm', 10.0)
    assert row(reg, 'arm0').admissions == 2


def test_robot_moves_to_a_new_node_only_when_its_old_driver_is_gone():
    reg, clock = make()
    up(reg, 'arm0')
    reg.on_heartbeat('/spare/driver', 'active', 10.0)
    reg.on_description('/spare/driver', 'arm0', 'mujoco_arm', 10.0)
    spare = [r for r in reg.robots() if r.driver == '/spare/driver'][0]
    assert 'already served by /arm0/driver' in spare.health
    assert row_of(reg, '/arm0/driver').admissions == 1
    clock.advance(1.0)
    reg.tick()  # the old one dies, the spare is still silent too
    reg.on_heartbeat('/spare/driver', 'active', 10.0)
    reg.on_description('/spare/driver', 'arm0', 'mujoco_arm', 10.0)
    moved = row_of(reg, '/spare/driver')
    assert (moved.robot_id, moved.health, moved.admissions) == ('arm0', 'ok', 2)
    assert reg.acquire(['arm0'], 'exp').ok


def row_of(reg, driver):
    rows = [r for r in reg.robots() if r.driver == driver and r.admissions]
    assert len(rows) == 1, reg.robots()
    return rows[0]


def test_expected_robots_report_missing_ones_and_check_kinds():
    reg, clock = make(expected_robots=('arm0', 'arm1:ur5', 'arm9'))
    up(reg, 'arm0')
    up(reg, 'arm1', kind='mujoco_arm')
    rows = {r.robot_id: r for r in reg.robots()}
    assert rows['arm0'].health == 'ok'
    assert rows['arm9'].lifecycle_state == 'missing' and not rows['arm9'].healthy
    assert "kind mismatch: expected_robots says arm1:ur5, the driver reports 'mujoco_arm'" \
        in rows['arm1'].health
    reply = reg.acquire(['arm1', 'arm9'], 'exp')
    assert not reply.ok and 'arm1: not available (kind mismatch' in reply.message
    assert 'arm9: no such robot' in reply.message


@pytest.mark.parametrize('values, expect', [
    ({'expected_robots': ['arm 0']}, "is not 'robot_id' or 'robot_id:kind'"),
    ({'expected_robots': ['arm0', 'arm0:x']}, "lists 'arm0' twice"),
    ({'heartbeat_timeout_s': 0.0}, 'heartbeat_timeout_s must be > 0'),
    ({'default_ttl_s': 700.0}, 'default_ttl_s must be in (0, max_ttl_s=600]'),
    ({'heartbeat_timeout': 1.0}, "did you mean 'heartbeat_timeout_s'"),
])
def test_config_errors_name_the_key(values, expect):
    with pytest.raises(ConfigError, match=None) as e:
        build_config(RegistryConfig, values)
    assert expect in str(e.value)


def test_failed_bring_up_and_slow_rate_are_reported():
    reg, clock = make(slow_ratio=0.5)
    fqn = up(reg, 'arm0')
    reg.on_heartbeat(fqn, 'active', 4.0)
    assert row(reg, 'arm0').health == 'slow: 4.0 of 10 Hz'
    assert reg.acquire(['arm0'], 'exp').ok  # slow is still healthy
    reg.on_heartbeat('/arm1/driver', 'unconfigured', 0.0)
    reg.set_problem('/arm1/driver', '/arm1/driver: configure failed (see its log)')
    assert [r.health for r in reg.robots() if r.driver == '/arm1/driver'] == \
        ['/arm1/driver: configure failed (see its log)']


def test_dead_nodes_that_serve_no_robot_are_forgotten():
    reg, clock = make(forget_after_s=5.0)
    reg.discover('/ghost/driver')
    fqn = up(reg, 'arm0')
    clock.advance(6.0)
    reg.tick()
    assert [r.driver for r in reg.robots()] == [fqn]  # a lost robot stays listed


def test_revision_changes_with_the_report_not_with_every_heartbeat():
    reg, clock = make()
    fqn = up(reg, 'arm0')
    rev = reg.revision
    clock.advance(0.2)
    reg.on_heartbeat(fqn, 'active', 10.0)
    reg.tick()
    assert reg.revision == rev
    reg.acquire(['arm0'], 'exp')
    assert reg.revision > rev


def test_silence_during_a_transition_we_asked_for_is_not_a_loss():
    reg, clock = make(heartbeat_timeout_s=0.6)
    fqn = up(reg, 'arm0', state='inactive')
    reg.set_busy(fqn, clock.t + 2.0)  # activating: its only executor sends no heartbeat
    clock.advance(1.5)
    reg.tick()
    assert row(reg, 'arm0').healthy
    clock.advance(0.6)  # the answer was due and did not come: it is lost after all
    reg.tick()
    assert not row(reg, 'arm0').healthy


def test_a_driver_reconfigured_as_another_robot_gives_up_the_first():
    reg, clock = make()
    fqn = up(reg, 'arm0')
    lease = reg.acquire(['arm0'], 'exp')
    reg.on_description(fqn, 'arm7', 'mujoco_arm', 10.0)
    assert 'now serves' in reg.renew(lease.lease_id).message
    assert reg.acquire(['arm7'], 'exp').ok and not reg.acquire(['arm0'], 'exp').ok
