"""Holding a lease on the run's robots for as long as the run lasts (no ROS here).

`realrl train` with a ``lease:`` section asks the hardware manager for all of the graph's
robots at once before it activates their drivers, renews the lease at a third of its ttl,
and releases it when the run ends. The manager revokes a lease when one of its robots is
lost (its driver died or stopped answering): the keeper then asks again, and gets the robots
back once the restarted driver is re-admitted. A refusal because another holder has a robot
ends the run (two experiments must never command one arm); a refusal because a robot is not
known or not admitted yet is retried until ``wait_s`` has passed.

The keeper only decides; the monitor node sends the requests and feeds the replies back.
"""
from __future__ import annotations

from dataclasses import dataclass

from realrl_common.config import check

RETRYABLE = ('no such robot', 'not available')
"""Refusal reasons that go away as the manager discovers and admits the drivers."""


@dataclass(frozen=True)
class LeaseSpec:
    """The graph's ``lease:`` section."""

    enabled: bool = False
    """Lease the graph's robots from a hardware manager before activating their drivers."""
    manager: str = '/hardware_manager'
    """The hardware manager node (its services are <manager>/acquire_lease, ...)."""
    ttl_s: float = 10.0
    """Lease lifetime; renewed every ttl_s / 3, so a run that dies frees its robots in ttl_s."""
    wait_s: float = 20.0
    """How long to wait for the manager to grant the lease (it must discover and admit the
    drivers first), at the start and again after a robot was lost."""

    def __post_init__(self):
        check(self.manager.startswith('/'), f'lease.manager must be a node name starting with '
              f'/, e.g. /hardware_manager, got {self.manager!r}')
        check(self.ttl_s > 0, f'lease.ttl_s must be > 0, got {self.ttl_s}')
        check(self.wait_s > 0, f'lease.wait_s must be > 0, got {self.wait_s}')


class LeaseError(RuntimeError):
    """The run cannot hold its robots."""


class LeaseKeeper:
    """What to ask the manager, and when. Times are seconds of one monotonic clock."""

    def __init__(self, spec: LeaseSpec, robot_ids: list[str], holder: str, now: float):
        self.spec, self.robot_ids, self.holder = spec, list(robot_ids), holder
        self.lease_id = ''
        self.granted_at = None
        self.events: list[str] = []
        self._since = now          # when we started wanting the lease (for wait_s)
        self._next = now           # earliest time of the next request
        self._in_flight = False
        self._last_refusal = ''

    @property
    def held(self) -> bool:
        return bool(self.lease_id)

    def request(self, now: float) -> tuple[str, dict] | None:
        """The request to send now, if any: ('acquire', fields) or ('renew', fields)."""
        if self._in_flight or now < self._next:
            return None
        self._in_flight = True
        if self.held:
            return 'renew', {'lease_id': self.lease_id, 'ttl_s': self.spec.ttl_s}
        return 'acquire', {'robot_ids': self.robot_ids, 'holder': self.holder,
                           'ttl_s': self.spec.ttl_s}

    def on_acquire(self, granted: bool, lease_id: str, message: str, now: float) -> None:
        """Feed an acquire reply (or granted=False, message='no answer' for a lost one)."""
        self._in_flight = False
        if granted:
            self.lease_id, self.granted_at = lease_id, now
            self.events.append(f'lease {lease_id} on {self.robot_ids} granted to {self.holder}')
            self._next = now + self.spec.ttl_s / 3
            return
        self._last_refusal = message
        if 'leased by' in message:
            raise LeaseError(f'{self.spec.manager} refused the lease: {message}. Another '
                             'experiment holds a robot of this run; wait for it or change the '
                             "graph's robots")
        self.check_waiting(now)
        self._next = now + 0.25

    def on_renew(self, ok: bool, message: str, now: float) -> None:
        """Feed a renew reply. A lease that ended (revoked, expired) is asked for again."""
        self._in_flight = False
        if ok:
            self._next = now + self.spec.ttl_s / 3
            return
        if message == 'no answer':  # the request or reply was lost: try again soon
            self._next = now + 0.25
            return
        self.events.append(f'lease {self.lease_id} ended ({message}); asking again')
        self.lease_id, self._since, self._next = '', now, now

    def on_lost_request(self, now: float) -> None:
        """A request got no answer in time (the manager is busy, restarting or gone)."""
        if self.held:
            self.on_renew(False, 'no answer', now)
        else:
            self.on_acquire(False, '', 'no answer', now)

    def check_waiting(self, now: float) -> None:
        """LeaseError once the lease has been wanted for longer than wait_s."""
        if not self.held and now - self._since > self.spec.wait_s:
            why = self._last_refusal or 'no answer'
            raise LeaseError(
                f'no lease on {self.robot_ids} from {self.spec.manager} after '
                f'{self.spec.wait_s:g} s (last reply: {why}); start a hardware manager '
                '(hardware_manager_node) or remove the lease section from the graph')
