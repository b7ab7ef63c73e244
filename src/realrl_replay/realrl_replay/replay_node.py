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
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
from realrl_interfaces.msg import RobotDescription, Transition, TransitionAck
from realrl_interfaces.srv import SenderState
from rclpy.node import Node

from realrl_common.config import ConfigError
from realrl_common.convert import from_f32, image_array, stamp_ns
from realrl_common.embodiment import SharedSpace
from realrl_common.node_main import spin_node
from realrl_common.qos import DATA_QOS, LATCHED_QOS
from realrl_common.ros_params import read_config
from realrl_replay.errors import StoreError
from realrl_replay.transition_schema import EMBODIMENT, describe_robot, store_schema
from realrl_replay.config import WriterConfig
from realrl_replay.writer import ReplayWriter
from realrl_replay.node_config import ReplayNodeConfig


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
        self._inflight = None   # the commit started at the last tick
        self._acked: dict[str, int] = {}
        self.space: SharedSpace | None = None
        """Shared space of the store's robots (None: a store from before it, unpadded)."""
        self._embodiment: dict[str, int] = {}
        """Robot -> its embodiment index in space; a robot without one is not stored."""
        self._blank_images: dict[str, np.ndarray] = {}
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
        meta = self.writer.metadata
        if 'space' in meta:
            self.space = SharedSpace.from_json(meta['space'])
            for rid, desc in meta.get('robots', {}).items():
                self._embodiment[rid] = self.space.index(desc)
        self._prepare_images()
        self.get_logger().info(f'opened {path}: {self.writer.count} transitions, '
                               f'robots {list(self.writer.robot_names)}')

    def _create(self):
        descriptions = {rid: self.descriptions[rid] for rid in self.cfg.robot_ids}
        try:
            schema, self.space = store_schema(descriptions)
        except ValueError as e:
            raise ConfigError(f'robot_ids: {e}') from None
        self.writer = ReplayWriter.create(
            self.cfg.store_path, schema,
            {'robots': descriptions, 'space': self.space.to_json(), 'created_unix': time.time(),
             'source': 'online', 'replay_config': asdict(self.cfg)},
            config=WriterConfig(fsync=self.cfg.fsync))
        self._embodiment = {rid: self.space.index(d) for rid, d in descriptions.items()}
        self._prepare_images()
        space = self.space
        self.get_logger().info(f'created {self.cfg.store_path} for {sorted(descriptions)}: '
                               f'embodiments {list(space.keys)}, state {space.state_dim}, '
                               f'action {space.action_dim}')

    def _prepare_images(self):
        """Black frames for the cameras a robot lacks (the schema has every robot's)."""
        fields = self.writer.schema.fields
        self._blank_images = {f.name: np.zeros(f.shape, f.dtype) for f in fields
                              if '/image_' in f.name}

    def _on_description(self, msg: RobotDescription):
        desc = describe_robot(msg)
        self.descriptions[msg.robot_id] = desc
        if self.writer is not None and self.space is not None:
            try:  # a store that exists: the robot must still be what the store was made for
                self._embodiment[msg.robot_id] = self.space.index(desc)
            except ValueError as e:
                self._embodiment.pop(msg.robot_id, None)
                self.get_logger().error(f'{e}; its transitions are not stored (start a new '
                                        f'store_path for the new robot set)')
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
        state, next_state = from_f32(msg.state), from_f32(msg.next_state)
        action = from_f32(msg.action)
        extra = {}
        if self.space is not None:
            e = self._embodiment.get(msg.robot_id)
            if e is None:
                raise ValueError(f'robot {msg.robot_id} has no embodiment in this store '
                                 f'(its description is missing or does not fit)')
            state, next_state = self.space.pad_state(e, state), self.space.pad_state(e, next_state)
            action = self.space.pad_action(e, action)
            extra[EMBODIMENT] = np.int16(e)
        rec = {
            'robot_id': msg.robot_id, 'seq': int(msg.seq),
            'obs/state': state, 'next_obs/state': next_state,
            'action': action, 'reward': np.float32(msg.reward),
            'terminated': bool(msg.terminated), 'truncated': bool(msg.truncated),
            'episode_id': int(msg.episode_id), 'step': int(msg.step),
            'policy_version': int(msg.policy_version), 'intervention': bool(msg.intervention),
            'stamp_ns': stamp_ns(msg.header.stamp),
        }
        rec.update(extra)
        for prefix, images in (('obs', msg.images), ('next_obs', msg.next_images)):
            for img in images:
                rec[f'{prefix}/image_{img.header.frame_id}'] = image_array(img)
        for name, blank in self._blank_images.items():
            rec.setdefault(name, blank)
        if not np.isfinite(rec['reward']):
            raise ValueError('reward is not finite')
        return rec

    def _commit(self):
        if self.writer is None:
            return
        if self._inflight is not None:
            if not self._inflight.done():
                return
            self._inflight.result()  # a failed commit raises here: the node stops, unacked
            self._inflight = None
            self._ack_new()
        if self.writer.pending:
            self._inflight = self.writer.commit_async(boundary=True)

    def _ack_new(self):
        info = self.writer.commit_info()
        for robot, seq in info.seqs.items():
            if seq != self._acked.get(robot):
                self._acked[robot] = seq
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
        if self.writer is not None:
            self.writer.commit()  # waits for the commit in flight, then commits the rest
            self._ack_new()
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
    for start in range(reader.first, reader.count, step):
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
