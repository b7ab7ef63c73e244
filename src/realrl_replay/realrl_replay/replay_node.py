"""ROS 2 adapter of the replay store's single writer.

in:  /<robot>/description (latched), /<robot>/transition
out: /replay/ack (TransitionAck per robot: highest durable seq), ~/sender_state service
Transitions are appended as they arrive and committed in groups on a timer: each tick
acknowledges the commit that finished since the last one and starts the next (pipelined: the
rows are encoded and written on the writer's threads while the node takes new messages;
under load a commit stops at the last chunk boundary, see ReplayWriter.commit_async). An ack
is published only after the commit that made them durable returned. Acks are repeated
every second so that a lost ack costs a re-send, never a transition.

Robots of different kinds (state and action shapes) share the store: rows hold the shared,
zero-padded state and action of ``realrl_common.embodiment.SharedSpace`` plus the row's
``embodiment``; the space is kept in the store's metadata ('space').

The protocol (gap-free seqs, early transitions, padding, records, acks, reopen) is
``IngestCore`` (ingest_core.py, no ROS); this node reads each Transition from its serialized
bytes (``realrl_common.cdr``: frames stay views of the bytes), decodes it with the one
transition schema (``realrl_common.transition``) and publishes what the core returns.
"""
from __future__ import annotations

from dataclasses import asdict

from rclpy.node import Node

from realrl_common.cdr import CdrReader
from realrl_common.config import ConfigError
from realrl_common.embodiment import describe_robot
from realrl_common.node_main import spin_node
from realrl_common.qos import DATA_QOS, LATCHED_QOS
from realrl_common.ros_params import read_config
from realrl_common.scheduling import serve_realtime
from realrl_common.transition import TRANSITION
from realrl_interfaces.msg import RobotDescription, Transition, TransitionAck
from realrl_interfaces.srv import SenderState
from realrl_replay.config import WriterConfig
from realrl_replay.errors import StoreError
from realrl_replay.ingest_core import REJECTED, Ack, IngestCore
from realrl_replay.node_config import ReplayNodeConfig

READ_TRANSITION = CdrReader(Transition)
LOG_THROTTLE_S = 5.0
"""A stream of rejected transitions is logged at most once per this many seconds."""


class ReplayNode(Node):
    """Stores the robots' transitions durably and acknowledges them once committed."""

    def __init__(self):
        super().__init__('replay', automatically_declare_parameters_from_overrides=True)
        self.cfg = read_config(self, ReplayNodeConfig)
        try:
            self.core = IngestCore(
                self.cfg.store_path, self.cfg.robot_ids, WriterConfig(fsync=self.cfg.fsync),
                {'source': 'online', 'replay_config': asdict(self.cfg)},
                max_wait_s=self.cfg.commit_max_wait_s)
        except (StoreError, ValueError) as e:
            raise ConfigError(f'store_path: {e}') from None
        writer = self.core.writer
        if writer is not None:
            self.get_logger().info(f'opened {self.cfg.store_path}: {writer.count} transitions, '
                                   f'robots {list(writer.robot_names)}')
        self._ack_pub = self.create_publisher(TransitionAck, '/replay/ack', DATA_QOS)
        for rid in self.cfg.robot_ids:
            self.create_subscription(RobotDescription, f'/{rid}/description',
                                     self._on_description, LATCHED_QOS)
            self.create_subscription(Transition, f'/{rid}/transition', self._on_transition,
                                     DATA_QOS, raw=True)
        self.create_service(SenderState, '~/sender_state', self._on_sender_state)
        self.create_timer(self.cfg.commit_interval_s, self._commit)
        self.create_timer(self.cfg.ack_repeat_s, lambda: self._publish(self.core.all_acks()))
        serve_realtime(self.get_logger(), self.cfg.realtime_priority)

    def _on_description(self, msg: RobotDescription):
        try:
            created, error = self.core.on_description(describe_robot(msg))
        except ValueError as e:
            raise ConfigError(f'robot_ids: {e}') from None
        if error:
            self.get_logger().error(error)
        if created:
            space = self.core.space
            self.get_logger().info(
                f'created {self.cfg.store_path} for {sorted(self.cfg.robot_ids)}: embodiments '
                f'{list(space.keys)}, state {space.state_dim}, action {space.action_dim}')

    def _on_transition(self, raw: bytes):
        """A Transition's serialized bytes: read by cdr.py (frames stay views of the bytes;
        rclpy's message objects copied each into a new array first)."""
        try:
            msg = READ_TRANSITION(raw)
        except ValueError as e:
            outcome = self.core.reject('?', -1, str(e))
        else:
            try:
                outcome = self.core.on_transition(TRANSITION.from_message(msg))
            except ValueError as e:
                outcome = self.core.reject(msg.robot_id, msg.seq, str(e))
        if outcome.status == REJECTED:
            rejected = self.core.counters[REJECTED]
            self.get_logger().error(f'rejected {outcome.error} ({rejected} rejected)',
                                    throttle_duration_sec=LOG_THROTTLE_S)

    def _commit(self):
        self._publish(self.core.tick())  # a failed commit raises: the node stops, unacked

    def _publish(self, acks: list[Ack]):
        for ack in acks:
            self._ack_pub.publish(TransitionAck(robot_id=ack.robot_id,
                                                committed_seq=ack.committed_seq,
                                                stored=ack.stored))

    def _on_sender_state(self, request, response):
        state, acks = self.core.sender_state(request.robot_id)
        self._publish(acks)
        response.known = state.known
        response.committed_seq = state.committed_seq
        response.last_episode_id = state.last_episode_id
        response.stored = state.stored
        return response

    def close(self):
        self.get_logger().info(f'transitions: {dict(self.core.counters)}')
        self.core.close()
        if self.core.writer is not None:
            self.get_logger().info(f'closed the store with {self.core.writer.count} transitions')


def main(args=None):
    """Runs the replay node."""
    spin_node(ReplayNode, 'replay', args)


if __name__ == '__main__':
    main()
