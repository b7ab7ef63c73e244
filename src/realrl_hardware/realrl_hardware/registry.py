"""The hardware manager's core (no ROS): robot drivers, their health, and leases of robots.

A *driver* is a node found on the graph, named by its fully qualified name ('/arm0/driver').
A *robot* is what a driver's description calls itself (its robot_id). A robot is
**admitted**, and can be leased, while its driver

- sends heartbeats (one missing for ``heartbeat_timeout_s`` makes it unhealthy),
- has been described since it last went unhealthy or left the inactive/active states, and
- has no problem (a kind other than ``expected_robots`` says, a robot_id another healthy
  driver already serves, a failed bring-up).

A robot that loses admission loses its lease. When its driver comes back (the same node
restarted, or a new node with the same robot_id once the old one is unhealthy) and is
described again, the robot is **re-admitted**.

A **lease** gives one holder a set of robots, all or nothing. It ends when released, when it
is not renewed within its ttl (so a holder that dies loses its leases), or when one of its
robots loses admission (the lease is revoked as a whole). ``renew`` and ``release`` of an
ended lease say why it ended.

All times come from the injected ``clock`` (seconds, monotonic); nothing here sleeps.
"""
from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from realrl_common.config import check

DESCRIBED_STATES = ('inactive', 'active')  # lifecycle states in which a driver has a description
ROBOT_ID = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')
ENDED_LEASES_KEPT = 1000


@dataclass(frozen=True)
class RegistryConfig:
    """Expected robots, health and lease rules of the registry."""

    expected_robots: tuple[str, ...] = ()
    """Robots that should be present, as 'robot_id' or 'robot_id:kind' (e.g. 'arm1:mujoco_arm').
    Missing ones are reported; one whose driver reports another kind is not admitted. Robots
    not listed are discovered and admitted all the same."""
    heartbeat_timeout_s: float = 0.6
    """A robot is unhealthy after this long without a heartbeat (drivers send 5 a second, so
    0.6 s is three missed)."""
    default_ttl_s: float = 10.0
    """Lease lifetime when a request asks for ttl_s 0."""
    max_ttl_s: float = 600.0
    """Longest lease lifetime a request may ask for."""
    slow_ratio: float = 0.5
    """An active robot whose measured control rate is below this share of its configured rate
    is reported 'slow' (it stays healthy and leasable)."""
    forget_after_s: float = 60.0
    """A driver that no robot record points to is dropped from the list after this long
    without a heartbeat (a dead node that the graph still listed)."""

    def __post_init__(self):
        check(self.heartbeat_timeout_s > 0,
              f'heartbeat_timeout_s must be > 0, got {self.heartbeat_timeout_s}')
        check(self.max_ttl_s > 0, f'max_ttl_s must be > 0, got {self.max_ttl_s}')
        check(0 < self.default_ttl_s <= self.max_ttl_s,
              f'default_ttl_s must be in (0, max_ttl_s={self.max_ttl_s:g}], '
              f'got {self.default_ttl_s}')
        check(0 <= self.slow_ratio <= 1, f'slow_ratio must be in [0, 1], got {self.slow_ratio}')
        check(self.forget_after_s > 0, f'forget_after_s must be > 0, got {self.forget_after_s}')
        seen = set()
        for entry in self.expected_robots:
            rid, colon, kind = entry.partition(':')
            check(bool(ROBOT_ID.match(rid)) and (not colon or bool(ROBOT_ID.match(kind))),
                  f"expected_robots: {entry!r} is not 'robot_id' or 'robot_id:kind', "
                  f"e.g. 'arm0' or 'arm0:mujoco_arm'")
            check(rid not in seen, f'expected_robots lists {rid!r} twice; keep one entry')
            seen.add(rid)

    def expected(self) -> dict[str, str]:
        """robot_id -> expected kind ('' if any kind will do)."""
        return dict(entry.partition(':')[::2] for entry in self.expected_robots)


@dataclass
class Driver:
    """What the registry knows of one driver node, by its fully qualified name."""

    fqn: str
    seen_at: float
    heartbeat_at: float | None = None
    lifecycle_state: str = 'unknown'
    achieved_hz: float = 0.0
    healthy: bool = False
    described: bool = False  # its description (below) is current
    robot_id: str = ''
    kind: str = ''
    control_hz: float = 0.0
    description: Any = None
    problem: str = ''
    busy_until: float = 0.0  # in a transition we asked for: silence is expected until then


@dataclass
class Robot:
    """One robot, the driver that serves it, whether it is admitted and its lease."""

    robot_id: str
    driver: str  # fqn of the driver that serves it now
    admitted: bool = False
    admissions: int = 0
    lease_id: str = ''


@dataclass
class Lease:
    """Robots held by one holder until expires_at (a renewal moves it to ttl_s from then)."""

    lease_id: str
    holder: str
    robot_ids: tuple[str, ...]
    ttl_s: float
    expires_at: float


@dataclass(frozen=True)
class LeaseReply:
    """The answer to an acquire, renew or release request."""

    ok: bool
    message: str = ''
    lease_id: str = ''
    ttl_s: float = 0.0
    expires_in_s: float = 0.0


@dataclass(frozen=True)
class RobotView:
    """One row of the manager's report (the fields of realrl_interfaces/RobotState)."""

    robot_id: str
    kind: str
    driver: str
    lifecycle_state: str
    described: bool
    healthy: bool
    health: str
    heartbeat_age_s: float
    achieved_hz: float
    control_hz: float
    lease_holder: str = ''
    lease_id: str = ''
    lease_expires_in_s: float = 0.0
    admissions: int = 0
    description: Any = field(default=None, compare=False)


class Registry:
    """Drivers, robots and leases of the hardware manager, without ROS: the node
    feeds in what it sees and asks for the report and the leases."""

    def __init__(self, cfg: RegistryConfig, clock: Callable[[], float] = time.monotonic,
                 new_lease_id: Callable[[], str] = lambda: uuid.uuid4().hex[:12]):
        self.cfg = cfg
        self._clock, self._new_lease_id = clock, new_lease_id
        self._expected = cfg.expected()
        self._drivers: dict[str, Driver] = {}
        self._robots: dict[str, Robot] = {}
        self._leases: dict[str, Lease] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()  # lease id -> why it ended
        self._events: list[str] = []
        self.revision = 0  # changes whenever the report changes (apart from ages)

    # -- what the node feeds in ---------------------------------------------------------
    def discover(self, fqn: str) -> bool:
        """A driver node seen on the graph; True if it is new."""
        if fqn in self._drivers:
            return False
        self._drivers[fqn] = Driver(fqn, seen_at=self._clock())
        self._changed()
        return True

    def on_heartbeat(self, fqn: str, lifecycle_state: str, achieved_hz: float) -> None:
        self.discover(fqn)
        d = self._drivers[fqn]
        d.achieved_hz = float(achieved_hz)
        back = not d.healthy
        if back and d.heartbeat_at is not None:
            self._events.append(f'{fqn}: heartbeats again ({lifecycle_state})')
        d.healthy, d.heartbeat_at = True, self._clock()
        self.set_lifecycle_state(fqn, lifecycle_state)
        if back:
            self._changed()
            self._refresh(d)

    def set_lifecycle_state(self, fqn: str, state: str) -> None:
        """The driver's lifecycle state, from its heartbeat or a transition that succeeded."""
        d = self._drivers[fqn]
        if state == d.lifecycle_state:
            return
        d.lifecycle_state = state
        if state not in DESCRIBED_STATES:
            d.described = False  # restarted or cleaned up: its description must be read again
        self._changed()
        self._refresh(d)

    def on_description(self, fqn: str, robot_id: str, kind: str, control_hz: float,
                       description: Any = None) -> None:
        """The answer of the driver's describe service."""
        self.discover(fqn)
        d = self._drivers[fqn]
        previous = self._robot_of(d)
        if previous is not None and previous.robot_id != robot_id:  # reconfigured as another
            self._lose(previous, f'{fqn} now serves {robot_id!r}')
        d.robot_id, d.kind, d.description = robot_id, kind, description
        d.control_hz = float(control_hz)
        d.described, d.problem = True, ''
        want = self._expected.get(robot_id, '')
        if want and kind != want:
            d.problem = (f'kind mismatch: expected_robots says {robot_id}:{want}, the driver '
                         f'reports {kind!r}; fix expected_robots or the driver')
        robot = self._robots.get(robot_id)
        if robot is None:
            robot = self._robots[robot_id] = Robot(robot_id, fqn)
        elif robot.driver != fqn:
            old = self._drivers.get(robot.driver)
            if old is not None and self._serving(old):
                d.problem = (f'robot_id {robot_id!r} is already served by {old.fqn}; give each '
                             f'driver its own robot_id')
            else:  # the robot came back under another node, which takes over
                self._lose(robot, f'moved to {fqn}')
                robot.driver = fqn
        self._changed()
        if d.problem:
            self._events.append(f'{fqn}: {d.problem}')
        self._refresh(d)

    def set_busy(self, fqn: str, until: float) -> None:
        """The driver is in a transition we asked for until ``until`` (clock time): a driver
        with one executor sends no heartbeat while it configures, so silence until then is not
        a loss. 0 ends it."""
        d = self._drivers.get(fqn)
        if d is not None:
            d.busy_until = until

    def set_problem(self, fqn: str, problem: str) -> None:
        """Something the node found wrong with the driver (e.g. a failed bring-up); '' clears."""
        d = self._drivers.get(fqn)
        if d is None or d.problem == problem:
            return
        d.problem = problem
        self._changed()
        self._refresh(d)

    def tick(self) -> None:
        """Mark drivers without recent heartbeats unhealthy, end expired leases, forget ghosts."""
        now = self._clock()
        for d in list(self._drivers.values()):
            if (d.healthy and now - d.heartbeat_at > self.cfg.heartbeat_timeout_s
                    and now >= d.busy_until):
                d.healthy, d.described = False, False
                self._events.append(f'{d.fqn}: unhealthy, no heartbeat for '
                                    f'{now - d.heartbeat_at:.2f} s')
                self._changed()
                self._refresh(d)
            last = d.heartbeat_at if d.heartbeat_at is not None else d.seen_at
            if (not d.healthy and now - last > self.cfg.forget_after_s
                    and self._robot_of(d) is None):
                del self._drivers[d.fqn]
                self._changed()
        self._expire(now)

    def drain_events(self) -> list[str]:
        """What happened since the last call, one line each (for the log)."""
        events, self._events = self._events, []
        return events

    # -- what the node asks -------------------------------------------------------------
    def drivers(self) -> list[Driver]:
        return list(self._drivers.values())

    def driver(self, fqn: str) -> Driver | None:
        return self._drivers.get(fqn)

    def needs_description(self, fqn: str) -> bool:
        d = self._drivers[fqn]
        return d.healthy and d.lifecycle_state in DESCRIBED_STATES and not d.described

    def is_lost(self, fqn: str) -> bool:
        """The driver sent heartbeats once and stopped (dead, or a dead node's ghost)."""
        d = self._drivers[fqn]
        return d.heartbeat_at is not None and not d.healthy

    # -- leases -------------------------------------------------------------------------
    def acquire(self, robot_ids, holder: str, ttl_s: float = 0.0) -> LeaseReply:
        now = self._clock()
        self._expire(now)
        robot_ids = tuple(robot_ids)
        if not holder:
            return LeaseReply(False, 'holder is empty; name who asks, e.g. the experiment')
        if not robot_ids:
            return LeaseReply(False, "robot_ids is empty; list the robots to lease, e.g. ['arm0']")
        dupes = sorted({r for r in robot_ids if robot_ids.count(r) > 1})
        if dupes:
            return LeaseReply(False, f'robot_ids lists {dupes} more than once; list each once')
        ttl, why = self._ttl(ttl_s)
        if why:
            return LeaseReply(False, why)
        problems = []
        for rid in robot_ids:
            robot = self._robots.get(rid)
            if robot is None:
                known = sorted(self._robots)
                problems.append(f'{rid}: no such robot (known: {known})')
            elif robot.lease_id:
                lease = self._leases[robot.lease_id]
                problems.append(f'{rid}: leased by {lease.holder!r} (lease {lease.lease_id}, '
                                f'{lease.expires_at - now:.1f} s left unless renewed)')
            elif not robot.admitted:
                problems.append(f'{rid}: not available ({self._health(robot, now)})')
        if problems:
            return LeaseReply(False, 'refused, nothing leased: ' + '; '.join(problems))
        lease = Lease(self._new_lease_id(), holder, robot_ids, ttl, now + ttl)
        self._leases[lease.lease_id] = lease
        for rid in robot_ids:
            self._robots[rid].lease_id = lease.lease_id
        self._events.append(f'lease {lease.lease_id}: {list(robot_ids)} to {holder!r} '
                            f'for {ttl:g} s')
        self._changed()
        return LeaseReply(True, 'granted', lease.lease_id, ttl, ttl)

    def renew(self, lease_id: str, ttl_s: float = 0.0) -> LeaseReply:
        now = self._clock()
        self._expire(now)
        lease = self._leases.get(lease_id)
        if lease is None:
            return LeaseReply(False, self._why_not_held(lease_id), lease_id)
        ttl, why = self._ttl(ttl_s or lease.ttl_s)
        if why:
            return LeaseReply(False, why, lease_id)
        lease.ttl_s, lease.expires_at = ttl, now + ttl
        return LeaseReply(True, 'renewed', lease_id, ttl, ttl)

    def release(self, lease_id: str) -> LeaseReply:
        self._expire(self._clock())
        if lease_id not in self._leases:
            return LeaseReply(False, self._why_not_held(lease_id), lease_id)
        self._end_lease(self._leases[lease_id], 'was released')
        return LeaseReply(True, 'released', lease_id)

    def _ttl(self, ttl_s: float) -> tuple[float, str]:
        ttl = ttl_s or self.cfg.default_ttl_s
        if not 0 < ttl <= self.cfg.max_ttl_s:
            return 0.0, (f'ttl_s must be in (0, {self.cfg.max_ttl_s:g}] (0: the default '
                         f'{self.cfg.default_ttl_s:g} s), got {ttl_s:g}')
        return ttl, ''

    def _why_not_held(self, lease_id: str) -> str:
        if lease_id in self._ended:
            return f'lease {lease_id} {self._ended[lease_id]}; acquire a new lease'
        return (f'unknown lease {lease_id!r} (the hardware manager may have restarted); '
                f'acquire a new lease')

    def _expire(self, now: float) -> None:
        for lease in [x for x in self._leases.values() if now >= x.expires_at]:
            self._end_lease(lease, f'expired (not renewed within its ttl of {lease.ttl_s:g} s)')

    def _end_lease(self, lease: Lease, why: str) -> None:
        del self._leases[lease.lease_id]
        for rid in lease.robot_ids:
            if rid in self._robots and self._robots[rid].lease_id == lease.lease_id:
                self._robots[rid].lease_id = ''
        self._ended[lease.lease_id] = why
        while len(self._ended) > ENDED_LEASES_KEPT:
            self._ended.popitem(last=False)
        self._events.append(f'lease {lease.lease_id} of {lease.holder!r} {why}; '
                            f'{list(lease.robot_ids)} free')
        self._changed()

    # -- admission ----------------------------------------------------------------------
    def _serving(self, d: Driver) -> bool:
        return d.healthy and d.described and not d.problem

    def _robot_of(self, d: Driver) -> Robot | None:
        robot = self._robots.get(d.robot_id)
        return robot if robot is not None and robot.driver == d.fqn else None

    def _refresh(self, d: Driver) -> None:
        """A robot is admitted exactly while its driver serves it."""
        robot = self._robot_of(d)
        if robot is None:
            return
        if self._serving(d) and not robot.admitted:
            robot.admitted = True
            robot.admissions += 1
            again = 're-admitted' if robot.admissions > 1 else 'admitted'
            self._events.append(f'{robot.robot_id}: {again} ({d.kind} from {d.fqn}, '
                                f'{d.lifecycle_state})')
            self._changed()
        elif not self._serving(d) and robot.admitted:
            self._lose(robot, self._health(robot, self._clock()))

    def _lose(self, robot: Robot, why: str) -> None:
        if not robot.admitted:
            return
        robot.admitted = False
        self._events.append(f'{robot.robot_id}: lost ({why})')
        if robot.lease_id:
            self._end_lease(self._leases[robot.lease_id],
                            f'was revoked: {robot.robot_id} lost ({why})')
        self._changed()

    def _changed(self) -> None:
        self.revision += 1

    # -- the report ---------------------------------------------------------------------
    def _driver_health(self, d: Driver, now: float) -> str:
        if d.heartbeat_at is None:
            return 'no heartbeat yet'
        if not d.healthy:
            return f'no heartbeat for {now - d.heartbeat_at:.1f} s'
        if d.problem:
            return d.problem
        if not d.described:
            return f'not described yet ({d.lifecycle_state})'
        if (d.lifecycle_state == 'active' and d.achieved_hz > 0 and d.control_hz > 0
                and d.achieved_hz < self.cfg.slow_ratio * d.control_hz):
            return f'slow: {d.achieved_hz:.1f} of {d.control_hz:g} Hz'
        return 'ok'

    def _health(self, robot: Robot, now: float) -> str:
        return self._driver_health(self._drivers[robot.driver], now)

    def robots(self) -> list[RobotView]:
        """Every robot, every driver not (yet) serving a robot, and every expected robot that
        is missing; sorted by robot id, then driver."""
        now = self._clock()
        self._expire(now)
        rows = []
        for robot in self._robots.values():
            d = self._drivers[robot.driver]
            lease = self._leases.get(robot.lease_id)
            rows.append(self._view(d, now, robot.robot_id, robot.admissions, lease))
        for d in self._drivers.values():
            if self._robot_of(d) is None:
                rows.append(self._view(d, now, d.robot_id, 0, None))
        for rid, kind in self._expected.items():
            if rid not in self._robots:
                rows.append(RobotView(rid, kind, '', 'missing', False, False,
                                      'expected (expected_robots) but no driver has described it',
                                      -1.0, 0.0, 0.0))
        return sorted(rows, key=lambda r: (r.robot_id == '', r.robot_id, r.driver))

    def _view(self, d: Driver, now: float, robot_id: str, admissions: int,
              lease: Lease | None) -> RobotView:
        return RobotView(
            robot_id=robot_id, kind=d.kind, driver=d.fqn, lifecycle_state=d.lifecycle_state,
            described=d.described, healthy=d.healthy, health=self._driver_health(d, now),
            heartbeat_age_s=now - d.heartbeat_at if d.heartbeat_at is not None else -1.0,
            achieved_hz=d.achieved_hz, control_hz=d.control_hz,
            lease_holder=lease.holder if lease else '', lease_id=lease.lease_id if lease else '',
            lease_expires_in_s=max(0.0, lease.expires_at - now) if lease else 0.0,
            admissions=admissions, description=d.description)
