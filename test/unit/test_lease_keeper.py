"""The run's lease on its robots: when to ask, renew, ask again, and when to give up."""
import pytest

from realrl_bringup.lease_keeper import LeaseError, LeaseKeeper, LeaseSpec
from realrl_common.config import ConfigError, build_config

SPEC = LeaseSpec(enabled=True, ttl_s=9.0, wait_s=5.0)


def test_acquire_then_renew_at_a_third_of_the_ttl():
    keeper = LeaseKeeper(SPEC, ['arm0', 'arm1'], 'realrl:run:1', now=0.0)
    kind, fields = keeper.request(0.0)
    assert kind == 'acquire' and fields['robot_ids'] == ['arm0', 'arm1'] and fields['ttl_s'] == 9.0
    assert keeper.request(0.1) is None  # one request at a time
    keeper.on_acquire(True, 'L1', 'granted', 0.2)
    assert keeper.held and keeper.request(3.0) is None
    assert keeper.request(3.3) == ('renew', {'lease_id': 'L1', 'ttl_s': 9.0})
    keeper.on_renew(True, '', 3.4)
    assert keeper.request(6.3) is None and keeper.request(6.5)[0] == 'renew'


def test_robots_not_admitted_yet_are_waited_for_then_reported():
    keeper = LeaseKeeper(SPEC, ['arm0'], 'me', now=0.0)
    t = 0.0
    while t < 5.0:
        if keeper.request(t):
            keeper.on_acquire(False, '',
                              "refused, nothing leased: arm0: no such robot (known: [])", t)
        t += 0.1
    keeper.request(5.2)
    with pytest.raises(LeaseError, match='after 5 s .*not available .unhealthy.*hardware manager'):
        keeper.on_acquire(False, '',
                          'refused, nothing leased: arm0: not available (unhealthy)', 5.2)


def test_a_robot_held_by_another_experiment_ends_the_run_at_once():
    keeper = LeaseKeeper(SPEC, ['arm0'], 'me', now=0.0)
    keeper.request(0.0)
    with pytest.raises(LeaseError, match="leased by 'other'.*Another experiment"):
        keeper.on_acquire(False, '', "refused, nothing leased: arm0: leased by 'other' (lease L9, "
                          "8.0 s left unless renewed)", 0.1)


def test_a_revoked_lease_is_asked_for_again_and_a_lost_reply_retried():
    keeper = LeaseKeeper(SPEC, ['arm0'], 'me', now=0.0)
    keeper.request(0.0)
    keeper.on_acquire(True, 'L1', 'granted', 0.0)
    keeper.request(3.0)
    keeper.on_lost_request(5.0)          # no answer: still ours, renew again soon
    assert keeper.held and keeper.request(5.3)[0] == 'renew'
    keeper.on_renew(False, 'was revoked: arm0 lost (no heartbeat)', 5.4)
    assert not keeper.held and 'revoked' in keeper.events[-1]
    assert keeper.request(5.4)[0] == 'acquire'
    keeper.on_acquire(False, '', 'refused, nothing leased: arm0: not available (restarting)', 6.0)
    keeper.request(6.3)
    keeper.on_acquire(True, 'L2', 'granted', 6.4)  # re-admitted after its restart
    assert keeper.lease_id == 'L2'


@pytest.mark.parametrize('section, key', [({'manager': 'hardware_manager'}, 'lease.manager'),
                                          ({'ttl_s': 0}, 'lease.ttl_s'),
                                          ({'wait_s': -1}, 'lease.wait_s')])
def test_bad_lease_sections_name_the_key(section, key):
    with pytest.raises(ConfigError, match=key):
        build_config(LeaseSpec, section)
