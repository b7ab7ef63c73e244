"""The launcher's own ROS node: drives lifecycles and watches the run's progress."""
from __future__ import annotations

import time

from rclpy.node import Node

from realrl_bringup.lease_keeper import LeaseKeeper
from realrl_bringup.progress import EpisodeLog, Progress
from realrl_common.lifecycle import bring_up
from realrl_common.qos import DATA_QOS, LATCHED_QOS, STATUS_QOS
from realrl_interfaces.msg import (
    DriverStatus,
    EpisodeResult,
    LearnerStatus,
    PolicyVersion,
    TransitionAck,
)
from realrl_interfaces.srv import AcquireLease, ReleaseLease, RenewLease

LEASE_REQUEST_TIMEOUT_S = 2.0


class MonitorNode(Node):
    """The run's observer: follows episodes, driver status, acks, learner and policy
    versions into Progress and the episode log, and keeps the lease if any."""

    def __init__(self, robot_ids: list[str], progress: Progress, episode_log: EpisodeLog):
        super().__init__('realrl_monitor')
        self.progress = progress
        self.episode_log = episode_log
        self.driver_states: dict[str, str] = {}
        self.lease: LeaseKeeper | None = None  # set by start_leasing
        for rid in robot_ids:
            self.create_subscription(EpisodeResult, f'/{rid}/episode', self._on_episode, DATA_QOS)
            self.create_subscription(DriverStatus, f'/{rid}/status', self._on_status, STATUS_QOS)
        self.create_subscription(TransitionAck, '/replay/ack', self._on_ack, DATA_QOS)
        self.create_subscription(LearnerStatus, '/learner/status', self._on_learner, STATUS_QOS)
        self.create_subscription(PolicyVersion, '/policy/version', self._on_version, LATCHED_QOS)

    def _on_episode(self, msg: EpisodeResult):
        self.progress.on_episode(msg.success)
        self.episode_log.append({
            'time_s': round(self.progress.elapsed(), 3),
            'robot_id': msg.robot_id, 'episode_id': msg.episode_id, 'steps': msg.steps,
            'return': round(float(msg.episode_return), 5), 'success': bool(msg.success),
            'truncated': bool(msg.truncated), 'policy_version': msg.policy_version,
            'interventions': msg.interventions,  # HG-DAgger's measure: steps a person drove
            'intervention_rate': round(msg.interventions / msg.steps, 4) if msg.steps else 0.0})

    def _on_status(self, msg: DriverStatus):
        self.driver_states[msg.robot_id] = msg.lifecycle_state
        self.progress.steps[msg.robot_id] = msg.steps
        self.progress.rejected[msg.robot_id] = msg.actions_rejected
        self.progress.lost[msg.robot_id] = msg.actions_lost
        self.progress.waiting[msg.robot_id] = msg.waiting_for

    def _on_ack(self, msg: TransitionAck):
        self.progress.stored = max(self.progress.stored, msg.stored)

    def _on_learner(self, msg: LearnerStatus):
        self.progress.learner_updates = msg.updates
        self.progress.learner_version = msg.policy_version

    def _on_version(self, msg: PolicyVersion):
        self.progress.policy_version = msg.version

    # -- lifecycle ----------------------------------------------------------------------
    def bring_up(self, fqn: str, spin, timeout: float = 30.0, alive=lambda: True,
                 target: str = 'active') -> str:
        """Configure (if unconfigured) then activate (unless target is 'inactive'); returns
        '' or what went wrong (realrl_common.lifecycle: each step re-reads the state, lost
        requests are retried)."""
        return bring_up(self, fqn, spin, timeout, alive, target=target)

    # -- leases -------------------------------------------------------------------------
    def start_leasing(self, keeper: LeaseKeeper) -> None:
        """Hold ``keeper``'s lease from now on (call tend_lease often)."""
        manager = keeper.spec.manager
        self.lease = keeper
        self._acquire = self.create_client(AcquireLease, f'{manager}/acquire_lease')
        self._renew = self.create_client(RenewLease, f'{manager}/renew_lease')
        self._release = self.create_client(ReleaseLease, f'{manager}/release_lease')
        self._lease_call = None  # (kind, future, deadline)

    def tend_lease(self) -> list[str]:
        """Send what the keeper asks for and feed it the replies; returns new events.
        Raises LeaseError when the run cannot hold its robots."""
        keeper, now = self.lease, time.monotonic()
        seen = len(keeper.events)
        if self._lease_call is not None:
            kind, future, deadline = self._lease_call
            if future.done():
                self._lease_call = None
                r = future.result()
                if kind == 'acquire':
                    keeper.on_acquire(r.granted, r.lease_id, r.message, now)
                else:
                    keeper.on_renew(r.ok, r.message, now)
            elif now > deadline:
                client = self._acquire if kind == 'acquire' else self._renew
                client.remove_pending_request(future)
                self._lease_call = None
                keeper.on_lost_request(now)
        if self._lease_call is None:
            keeper.check_waiting(now)
            ask = keeper.request(now) if self._acquire.service_is_ready() else None
            if ask is not None:
                kind, fields = ask
                if kind == 'acquire':
                    req = AcquireLease.Request(robot_ids=fields['robot_ids'],
                                               holder=fields['holder'], ttl_s=fields['ttl_s'])
                    future = self._acquire.call_async(req)
                else:
                    future = self._renew.call_async(RenewLease.Request(
                        lease_id=fields['lease_id'], ttl_s=fields['ttl_s']))
                self._lease_call = (kind, future, now + LEASE_REQUEST_TIMEOUT_S)
        return keeper.events[seen:]

    def release_lease(self, spin) -> None:
        """Give the robots back (best effort: an unreleased lease expires after its ttl)."""
        if self.lease is None or not self.lease.held:
            return
        future = self._release.call_async(ReleaseLease.Request(lease_id=self.lease.lease_id))
        deadline = time.monotonic() + 1.0
        while not future.done() and time.monotonic() < deadline:
            spin(0.05)
