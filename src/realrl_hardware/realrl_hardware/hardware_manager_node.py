"""The hardware manager: a thin ROS adapter over ``Registry``.

It finds robot drivers on the graph by what they offer, with no list of addresses: a
publisher of ``realrl_interfaces/msg/DriverStatus`` (every driver heartbeats from the moment
it starts, configured or not) or a ``realrl_interfaces/srv/Describe`` service. For each driver
it subscribes to the heartbeat, brings it up (configure, then activate; ``activate: false``
only watches), reads its description, and admits the robot. It serves leases of robots and
publishes what it knows.

  out: ~/robots (RobotStates, latched; on every change and every publish_period_s)
  services: ~/acquire_lease, ~/renew_lease, ~/release_lease
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from rclpy.node import Node

from realrl_common.lifecycle import BringUp
from realrl_common.node_main import spin_node
from realrl_common.qos import LATCHED_QOS, STATUS_QOS
from realrl_common.ros_params import read_config
from realrl_common.scheduling import serve_realtime
from realrl_hardware.node_config import HardwareManagerConfig
from realrl_hardware.registry import Registry, RobotView
from realrl_interfaces.msg import DriverStatus, RobotDescription, RobotState, RobotStates
from realrl_interfaces.srv import AcquireLease, Describe, ReleaseLease, RenewLease

STATUS_TYPE = 'realrl_interfaces/msg/DriverStatus'
DESCRIBE_TYPE = 'realrl_interfaces/srv/Describe'
UNKNOWN_NODE = '_NODE_NAME_UNKNOWN_'  # what the graph says before it knows an endpoint's node
TICK_S = 0.05


@dataclass
class _Watch:
    """What the node holds for one driver."""

    describe: object  # rclpy client
    describing: tuple | None = None  # (future, deadline)
    bring_up: BringUp | None = None
    failed: str = ''  # the last bring-up's error
    retry_at: float = 0.0
    topics: set = field(default_factory=set)


class HardwareManagerNode(Node):
    """The hardware manager: discovers drivers in the ROS graph, brings them up,
    watches their health, serves leases and publishes ~/robots."""

    def __init__(self):
        super().__init__('hardware_manager', automatically_declare_parameters_from_overrides=True)
        self.cfg = read_config(self, HardwareManagerConfig)
        self.registry = Registry(self.cfg)
        self._watched: dict[str, _Watch] = {}
        self._status_subs: dict[str, tuple] = {}  # topic -> (subscription, driver fqn)
        self._pub = self.create_publisher(RobotStates, '~/robots', LATCHED_QOS)
        self.create_service(AcquireLease, '~/acquire_lease', self._on_acquire)
        self.create_service(RenewLease, '~/renew_lease', self._on_renew)
        self.create_service(ReleaseLease, '~/release_lease', self._on_release)
        self._next_scan = self._next_publish = 0.0
        self._published_revision = -1
        self.create_timer(TICK_S, self._tick)
        expected = ', '.join(self.cfg.expected_robots) or 'none listed'
        self.get_logger().info(f'watching the graph for robot drivers (activate: '
                               f'{str(self.cfg.activate).lower()}; expected: {expected})')
        serve_realtime(self.get_logger(), self.cfg.realtime_priority)

    # -- discovery ----------------------------------------------------------------------
    def _scan(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            if STATUS_TYPE in types:
                for info in self.get_publishers_info_by_topic(topic):
                    if info.node_name != UNKNOWN_NODE:  # its node is not discovered yet
                        self._watch(_join(info.node_namespace, info.node_name), topic)
        for name, types in self.get_service_names_and_types():
            if DESCRIBE_TYPE in types and name.endswith('/describe'):
                fqn = name[:-len('/describe')]
                self._watch(fqn, _join(fqn.rsplit('/', 1)[0] or '/', 'status'))

    def _watch(self, fqn: str, status_topic: str) -> None:
        if fqn not in self._watched:
            self._watched[fqn] = _Watch(self.create_client(Describe, f'{fqn}/describe'))
            self.registry.discover(fqn)
            self.get_logger().info(f'found driver {fqn}')
        watch = self._watched[fqn]
        if status_topic not in self._status_subs:
            sub = self.create_subscription(DriverStatus, status_topic,
                                           lambda msg, fqn=fqn: self._on_heartbeat(fqn, msg),
                                           STATUS_QOS)
            self._status_subs[status_topic] = (sub, fqn)
        elif self._status_subs[status_topic][1] != fqn and status_topic not in watch.topics:
            self.get_logger().warning(
                f'{fqn} and {self._status_subs[status_topic][1]} both publish {status_topic}; '
                f'their heartbeats cannot be told apart: run one driver per namespace')
        watch.topics.add(status_topic)

    # -- the loop -------------------------------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_scan:
            self._scan()
            self._next_scan = now + self.cfg.scan_period_s
        self.registry.tick()
        for fqn in list(self._watched):
            self._step(fqn)
        self._forget_gone()
        self._flush()

    def _step(self, fqn: str) -> None:
        """Move one driver along: bring-up, description. Called every tick, on each of its
        heartbeats and when an answer from it arrives, so no step waits for the timer."""
        driver, watch = self.registry.driver(fqn), self._watched.get(fqn)
        if driver is None or watch is None:
            return
        now = time.monotonic()
        self._bring_up(driver, watch, now)
        self._describe(fqn, watch, now)
        self._flush()

    def _on_heartbeat(self, fqn: str, msg: DriverStatus) -> None:
        self.registry.on_heartbeat(fqn, msg.lifecycle_state, msg.achieved_hz)
        self._step(fqn)

    def _bring_up(self, driver, watch: _Watch, now: float) -> None:
        fqn = driver.fqn
        lost = self.registry.is_lost(fqn)
        if watch.bring_up is not None:
            result = watch.bring_up.poll()
            self.registry.set_busy(fqn, watch.bring_up.transition_deadline)
            if result is None and lost:  # died while we were bringing it up
                watch.bring_up.close()
                watch.bring_up = None
            elif result == '':
                watch.bring_up = None
                if driver.problem and driver.problem == watch.failed:
                    self.registry.set_problem(fqn, '')
                watch.failed = ''
                self.registry.set_lifecycle_state(fqn, 'active')
            elif result is not None:
                watch.bring_up, watch.failed = None, result
                watch.retry_at = now + self.cfg.retry_after_s
                self.registry.set_problem(fqn, result)
                self.get_logger().warning(
                    f'{result}; trying again in {self.cfg.retry_after_s:g} s')
        elif (self.cfg.activate and not lost and driver.lifecycle_state != 'active'
              and now >= watch.retry_at):
            watch.bring_up = BringUp(self, fqn, self.cfg.request_timeout_s,
                                     self.cfg.transition_timeout_s,
                                     on_progress=lambda: self._step(fqn))
            watch.bring_up.poll()
            self.registry.set_busy(fqn, watch.bring_up.transition_deadline)

    def _describe(self, fqn: str, watch: _Watch, now: float) -> None:
        if watch.describing is not None:
            future, deadline = watch.describing
            if future.done():
                watch.describing = None
                d = future.result().description
                self.registry.on_description(fqn, d.robot_id, d.kind, d.control_hz, d)
            elif now > deadline:
                watch.describe.remove_pending_request(future)
                watch.describing = None
        elif self.registry.needs_description(fqn) and watch.describe.service_is_ready():
            future = watch.describe.call_async(Describe.Request())
            future.add_done_callback(lambda _: self._step(fqn))
            watch.describing = (future, now + self.cfg.request_timeout_s)

    def _forget_gone(self) -> None:
        known = {d.fqn for d in self.registry.drivers()}
        for fqn in [f for f in self._watched if f not in known]:
            watch = self._watched.pop(fqn)
            if watch.bring_up is not None:
                watch.bring_up.close()
            if watch.describing is not None:
                watch.describe.remove_pending_request(watch.describing[0])
            self.destroy_client(watch.describe)
            for topic in watch.topics:
                sub, owner = self._status_subs.get(topic, (None, None))
                if owner == fqn:
                    self.destroy_subscription(sub)
                    del self._status_subs[topic]

    def _flush(self) -> None:
        """Log what happened; publish the report if it changed or is due."""
        for line in self.registry.drain_events():
            self.get_logger().info(line)
        now = time.monotonic()
        if self.registry.revision == self._published_revision and now < self._next_publish:
            return
        msg = RobotStates(robots=[_state_msg(v) for v in self.registry.robots()])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._pub.publish(msg)
        self._published_revision = self.registry.revision
        self._next_publish = now + self.cfg.publish_period_s

    # -- leases ---------------------------------------------------------------------------
    def _on_acquire(self, request, response):
        reply = self.registry.acquire(list(request.robot_ids), request.holder, request.ttl_s)
        response.granted, response.lease_id = reply.ok, reply.lease_id
        response.ttl_s, response.message = reply.ttl_s, reply.message
        self._flush()
        return response

    def _on_renew(self, request, response):
        reply = self.registry.renew(request.lease_id, request.ttl_s)
        response.ok, response.expires_in_s, response.message = (reply.ok, reply.expires_in_s,
                                                                reply.message)
        self._flush()
        return response

    def _on_release(self, request, response):
        reply = self.registry.release(request.lease_id)
        response.ok, response.message = reply.ok, reply.message
        self._flush()
        return response


def _join(namespace: str, name: str) -> str:
    return f'{namespace.rstrip("/")}/{name}'


def _state_msg(v: RobotView) -> RobotState:
    return RobotState(
        robot_id=v.robot_id, kind=v.kind, driver=v.driver, lifecycle_state=v.lifecycle_state,
        described=v.described, healthy=v.healthy, health=v.health,
        heartbeat_age_s=float(v.heartbeat_age_s), achieved_hz=float(v.achieved_hz),
        control_hz=float(v.control_hz), lease_holder=v.lease_holder, lease_id=v.lease_id,
        lease_expires_in_s=float(v.lease_expires_in_s), admissions=v.admissions,
        description=v.description if v.description is not None else RobotDescription())


def main(args=None):
    """Runs the hardware manager node."""
    spin_node(HardwareManagerNode, 'hardware_manager', args)


if __name__ == '__main__':
    main()
