"""ROS 2 adapter of the replay store's single writer.

in:  /<robot>/description (latched), /<robot>/transition
out: /replay/ack (TransitionAck per robot: highest durable seq), ~/sender_state service
Transitions are appended as they arrive and committed in small groups on a timer; an ack
is published only after the commit that made them durable returned. Acks are repeated
every second so that a lost ack costs a re-send, never a transition.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from realrl_interfaces.msg import RobotDescription, Transition, TransitionAck
from realrl_interfaces.srv import SenderState
from rclpy.node import Node

from realrl_common.config import ConfigError, check
from realrl_common.convert import from_f32, image_array, stamp_ns
from realrl_common.node_main import spin_node
from realrl_common.qos import DATA_QOS, LATCHED_QOS
from realrl_common.ros_params import read_config
from realrl_replay.errors import StoreError
from realrl_replay.transition_schema import describe_robot, transition_schema
from realrl_replay.config import WriterConfig
from realrl_replay.writer import ReplayWriter


@dataclass(frozen=True)
class ReplayNodeConfig:
    store_path: str = 'replay'
    """Folder of the Zarr replay store (created if absent or empty, recovered if it exists)."""
    robot_ids: tuple[str, ...] = ('arm0',)
    """Robots whose transitions are stored."""
    commit_interval_s: float = 0.02
    """How often appended transitions are made durable and acknowledged."""
    ack_repeat_s: float = 1.0
    """How often every robot's ack is published again."""
    fsync: bool = True
    """fsync at each commit (durable across power loss, not only process crashes)."""

    def __post_init__(self):
        check(len(self.robot_ids) > 0, 'robot_ids must name at least one robot, e.g. [arm0]')
        check(self.commit_interval_s > 0, f'commit_interval_s must be > 0, got {self.commit_interval_s}')
        check(bool(self.store_path), 'store_path must name a folder')
        check(self.ack_repeat_s > 0, f'ack_repeat_s must be > 0, got {self.ack_repeat_s}')


class ReplayNode(Node):
    def __init__(self):
        super().__init__('replay', automatically_declare_parameters_from_overrides=True)
        self.cfg = read_config(self, ReplayNodeConfig)
        self.descriptions: dict[str, dict] = {}
        self.writer: ReplayWriter | None = None
        self.last_episode: dict[str, int] = {}
        self.rejected = 0
        self.counters: Counter = Counter()
        self._accepted_seq: dict[str, int] = {}
        self._early: list[Transition] = []
        self._open_existing()
        self._ack_pub = self.create_publisher(TransitionAck, '/replay/ack', DATA_QOS)
        for rid in self.cfg.robot_ids:
            self.create_subscription(RobotDescription, f'/{rid}/description',
                                     self._on_description, LATCHED_QOS)
            self.create_subscription(Transition, f'/{rid}/transition', self._on_transition,
                                     DATA_QOS)
        self.create_service(SenderState, '~/sender_state', self._on_sender_state)
        self.create_timer(self.cfg.commit_interval_s, self._commit)
        self.create_timer(self.cfg.ack_repeat_s, self._repeat_acks)

    # -- store ------------------------------------------------------------------------
    def _open_existing(self):
        path = Path(self.cfg.store_path)
        if not path.exists() or not any(path.iterdir()):
            return  # created once the robots' descriptions are known
        try:
            self.writer = ReplayWriter.open(path, WriterConfig(fsync=self.cfg.fsync))
        except StoreError as e:
            raise ConfigError(f'store_path: {e}') from None
        self.last_episode = last_episodes(self.writer)
        self.get_logger().info(f'opened {path}: {self.writer.count} transitions, '
                               f'robots {list(self.writer.robot_names)}')

    def _create(self):
        schema = transition_schema(self.descriptions[self.cfg.robot_ids[0]])
        for rid in self.cfg.robot_ids[1:]:
            if transition_schema(self.descriptions[rid]) != schema:
                raise ConfigError(f'robot_ids: {rid} has other observation/action shapes than '
                                  f'{self.cfg.robot_ids[0]}; one store holds one shape for now')
        self.writer = ReplayWriter.create(self.cfg.store_path, schema,
                                          {'robots': self.descriptions, 'created_unix': time.time()},
                                          config=WriterConfig(fsync=self.cfg.fsync))
        self.get_logger().info(f'created {self.cfg.store_path} for {list(self.descriptions)}')

    def _on_description(self, msg: RobotDescription):
        self.descriptions[msg.robot_id] = describe_robot(msg)
        if self.writer is None and set(self.cfg.robot_ids) <= set(self.descriptions):
            self._create()
            for tr in self._early:
                self._on_transition(tr)
            self._early = []

    # -- transitions ------------------------------------------------------------------
    def _on_transition(self, msg: Transition):
        if self.writer is None:
            self._early.append(msg)  # not acknowledged; kept until the store exists
            return
        expected = self._next_seq(msg.robot_id)
        if msg.seq != expected:
            # Older: a re-send of what the store holds (the ack covers it). Newer: a gap —
            # taking it would let the cumulative ack cover the missing ones, so it waits
            # for its re-send, in order.
            self.counters['duplicates' if msg.seq < expected else 'out_of_order'] += 1
            return
        try:
            record = self._record(msg)
            self.writer.append([record])
        except (ValueError, KeyError) as e:
            self.rejected += 1
            if self.rejected in (1, 10, 100) or self.rejected % 1000 == 0:
                self.get_logger().error(f'rejected transition {msg.robot_id}#{msg.seq}: {e} '
                                        f'({self.rejected} rejected)')
            return
        self.last_episode[msg.robot_id] = max(self.last_episode.get(msg.robot_id, -1),
                                              int(msg.episode_id))
        self._accepted_seq[msg.robot_id] = int(msg.seq)

    def _next_seq(self, robot: str) -> int:
        """The only seq of robot the store takes next: its sequence has no gaps."""
        last = self._accepted_seq.get(robot)
        if last is None:
            last = max(self.writer.committed_seq(robot), 0)
        return last + 1

    def _record(self, msg: Transition) -> dict:
        rec = {
            'robot_id': msg.robot_id, 'seq': int(msg.seq),
            'obs/state': from_f32(msg.state), 'next_obs/state': from_f32(msg.next_state),
            'action': from_f32(msg.action), 'reward': np.float32(msg.reward),
            'terminated': bool(msg.terminated), 'truncated': bool(msg.truncated),
            'episode_id': int(msg.episode_id), 'step': int(msg.step),
            'policy_version': int(msg.policy_version), 'intervention': bool(msg.intervention),
            'stamp_ns': stamp_ns(msg.header.stamp),
        }
        for prefix, images in (('obs', msg.images), ('next_obs', msg.next_images)):
            for img in images:
                rec[f'{prefix}/image_{img.header.frame_id}'] = image_array(img)
        if not np.isfinite(rec['reward']):
            raise ValueError('reward is not finite')
        return rec

    def _commit(self):
        if self.writer is None or not self.writer.pending:
            return
        before = dict(self.writer.commit_info().seqs)
        info = self.writer.commit()
        for robot, seq in info.seqs.items():
            if seq != before.get(robot):
                self._ack(robot, seq, info.count)

    def _repeat_acks(self):
        if self.writer is None:
            return
        info = self.writer.commit_info()
        for robot, seq in info.seqs.items():
            self._ack(robot, seq, info.count)

    def _ack(self, robot: str, seq: int, stored: int):
        if seq >= 0:
            self._ack_pub.publish(TransitionAck(robot_id=robot, committed_seq=seq, stored=stored))

    def _on_sender_state(self, request, response):
        self._commit()
        seq = self.writer.committed_seq(request.robot_id) if self.writer else -1
        response.known = seq >= 0
        response.committed_seq = max(seq, 0)
        response.last_episode_id = max(self.last_episode.get(request.robot_id, 0), 0)
        response.stored = self.writer.count if self.writer else 0
        return response

    def close(self):
        self.get_logger().info(f'dropped: {dict(self.counters)}, rejected: {self.rejected}')
        if self.writer is not None:
            self.writer.close()
            self.get_logger().info(f'closed the store with {self.writer.count} transitions')


def last_episodes(writer: ReplayWriter) -> dict[str, int]:
    """Highest episode id per robot in a store (read once when a store is reopened)."""
    from realrl_replay.reader import ReplayReader
    reader = ReplayReader(writer.info.root)
    out: dict[str, int] = {}
    step = 65536
    for start in range(0, reader.count, step):
        rows = reader.read_range(start, min(start + step, reader.count), ['robot_id', 'episode_id'])
        for code in np.unique(rows['robot_id']):
            name = reader.robot_names[int(code)]
            top = int(rows['episode_id'][rows['robot_id'] == code].max())
            out[name] = max(out.get(name, -1), top)
    return out


def main(args=None):
    spin_node(ReplayNode, 'replay', args)


if __name__ == '__main__':
    main()
