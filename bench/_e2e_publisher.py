r"""Robots for bench/replay_ingest.py's end-to-end part: one process, several simulated drivers.

Each robot is the drivers' real ``EpisodeLoop`` (outbox, per-robot seq, re-send after
``resend_after_s``, drop on ``/replay/ack``) over a ``PoolRobot`` that plays back states and
camera frames MuJoCo rendered from the arm beforehand (bench/replay_ingest.py renders the
pool: two cores cannot render 2,000 frames/s next to the replay node). Messages are the
driver's: ``RobotDescription`` (latched) on ``/<robot>/description``, ``Transition`` with two
``sensor_msgs/Image`` per side on ``/<robot>/transition``, built as ``DriverNode`` builds
them. One timer ticks every robot of the process at ``--hz``.

Writes, at the end, a JSON file: per acknowledged transition its ack time (wall clock) and
latency from its first send to the ack that covered it, plus the loops' counters.

    python bench/_e2e_publisher.py --robots arm_00,arm_01 --pool POOL.npz --go GO_FILE \\
        --seconds S --out OUT.json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.event_handler import PublisherEventCallbacks
from sensor_msgs.msg import Image

from realrl_common.convert import fill_image, to_f32
from realrl_common.qos import DATA_QOS, LATCHED_QOS
from realrl_driver.core.episode_loop import EpisodeLoop, Label, LoopConfig
from realrl_interfaces.msg import RobotDescription, Transition, TransitionAck

CAMERAS = ('front', 'wrist')
NO_EVENTS = PublisherEventCallbacks(use_default_callbacks=False)
"""rclpy gives every publisher two QoS-event handlers by default, and the executor adds each
to the wait set it builds in Python at every spin: with ten robots' publishers in one
process that was ~2.5 ms of CPU per spin (a driver process has one robot's few)."""


class PoolRobot:
    """A robot that replays rendered arm episodes: states, actions and both cameras' frames.

    Episode e of robot number k plays pool episode (7 k + e) mod E, so robots show different
    episodes at any moment. Labels itself (reward: minus the end effector's distance to the
    target, from the state's ee_to_target slice)."""

    def __init__(self, pool: dict, k: int, layout: dict):
        self.pool, self.k = pool, k
        self.episodes = pool['states'].shape[0]
        self.state_dim = pool['states'].shape[2]
        self.action_dim = pool['actions'].shape[2]
        self.action_low = -np.ones(self.action_dim, np.float32)
        self.action_high = np.ones(self.action_dim, np.float32)
        self.observation_layout = layout
        self.action_units = 'm'
        self.capabilities = ()
        self.kind = 'mujoco_panda7'
        self.episode, self.step = 0, 0
        self._to_target = layout['ee_to_target']

    def reset(self, seed):
        self.episode = (7 * self.k + int(seed)) % self.episodes
        self.step = 0
        return self.pool['states'][self.episode, 0]

    def apply(self, action):
        self.step = min(self.step + 1, self.pool['states'].shape[1] - 1)
        return self.pool['states'][self.episode, self.step]

    def action(self) -> np.ndarray:
        actions = self.pool['actions']
        return actions[self.episode, min(self.step, actions.shape[1] - 1)]

    def hold(self):
        pass

    def render(self, camera, width, height):
        return self.pool[camera][self.episode, self.step]

    def outcome(self) -> Label:
        a, b = self._to_target
        distance = float(np.linalg.norm(self.pool['states'][self.episode, self.step, a:b]))
        return Label(-distance, False, False)


def description(robot_id: str, robot: PoolRobot, cfg: LoopConfig) -> RobotDescription:
    layout = robot.observation_layout
    h, w = cfg.image_size
    return RobotDescription(
        robot_id=robot_id, kind=robot.kind, control_hz=float(cfg.control_hz),
        state_dim=robot.state_dim, state_names=list(layout),
        state_starts=[int(a) for a, _ in layout.values()],
        state_stops=[int(b) for _, b in layout.values()],
        action_dim=robot.action_dim, action_low=to_f32(robot.action_low),
        action_high=to_f32(robot.action_high), action_units=robot.action_units,
        camera_names=list(cfg.cameras), image_height=h, image_width=w,
        episode_max_steps=cfg.episode_max_steps, capabilities=[])


def images(frames: dict) -> list:
    msgs = []
    for cam, frame in frames.items():
        img = Image()
        fill_image(img, frame, cam)
        msgs.append(img)
    return msgs


FRAMES_ONCE = True
"""As the drivers send them: past an episode's first step, no obs frames (the receiver holds
them as the previous transition's next frames). --frames-twice sends them again."""


def transition_msg(robot_id: str, tr, stamp) -> Transition:
    """As DriverNode._transition_msg builds it."""
    msg = Transition(
        robot_id=robot_id, seq=tr.seq, episode_id=tr.episode_id, step=tr.step,
        state=to_f32(tr.state), action=to_f32(tr.action), reward=float(tr.reward),
        next_state=to_f32(tr.next_state), terminated=tr.terminated, truncated=tr.truncated,
        policy_version=tr.policy_version, intervention=tr.intervention,
        images_from_previous=FRAMES_ONCE and tr.step > 0,
        images=[] if FRAMES_ONCE and tr.step > 0 else images(tr.images),
        next_images=images(tr.next_images))
    msg.header.stamp = stamp
    return msg


class Robots:
    def __init__(self, node, names: list[str], first_k: int, pool: dict, layout: dict,
                 hz: float, episode_steps: int):
        self.node = node
        self.loops, self.pubs, self.robots = {}, {}, {}
        self.sent_at: dict[str, dict[int, float]] = {}
        self.acked: list[tuple[float, float]] = []
        self.top_ack: dict[str, int] = {}
        self.outbox_max = 0
        for i, name in enumerate(names):
            robot = PoolRobot(pool, first_k + i, layout)
            cfg = LoopConfig(robot_id=name, control_hz=hz, episode_max_steps=episode_steps,
                             seed=0, cameras=CAMERAS, image_size=pool['front'].shape[2:4],
                             reward_source='env')
            self.loops[name] = EpisodeLoop(cfg, robot)
            self.robots[name] = robot
            self.pubs[name] = node.create_publisher(Transition, f'/{name}/transition', DATA_QOS,
                                                    event_callbacks=NO_EVENTS)
            desc = node.create_publisher(RobotDescription, f'/{name}/description', LATCHED_QOS,
                                         event_callbacks=NO_EVENTS)
            desc.publish(description(name, robot, cfg))
            self.sent_at[name] = {}
        node.create_subscription(TransitionAck, '/replay/ack', self.on_ack, DATA_QOS)

    def tick(self) -> None:
        now, wall = time.monotonic(), time.time()
        stamp = self.node.get_clock().now().to_msg()
        for name, loop in self.loops.items():
            for tr in loop.due_resends(now):
                self.pubs[name].publish(transition_msg(name, tr, stamp))
            if loop.obs is not None:  # the policy's answer: the recorded episode's action
                loop.on_action(self.robots[name].action(), loop.obs.episode_id, loop.obs.step)
            out = loop.tick(now)
            if out.transition is not None:
                self.sent_at[name][out.transition.seq] = wall
                self.pubs[name].publish(transition_msg(name, out.transition, stamp))
            self.outbox_max = max(self.outbox_max, len(loop.outbox))

    def on_ack(self, msg: TransitionAck) -> None:
        loop = self.loops.get(msg.robot_id)
        if loop is None:
            return
        wall = time.time()
        loop.on_ack(msg.committed_seq)
        sent = self.sent_at[msg.robot_id]
        for seq in range(self.top_ack.get(msg.robot_id, 0) + 1, msg.committed_seq + 1):
            t = sent.pop(seq, None)
            if t is not None:
                self.acked.append((wall, wall - t))
        self.top_ack[msg.robot_id] = max(self.top_ack.get(msg.robot_id, 0), msg.committed_seq)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--robots', required=True, help='comma-separated robot ids')
    ap.add_argument('--first-k', type=int, default=0, help='number of the first robot')
    ap.add_argument('--pool', required=True, help='npz of rendered episodes')
    ap.add_argument('--hz', type=float, default=20.0)
    ap.add_argument('--episode-steps', type=int, default=50)
    ap.add_argument('--go', required=True,
                    help='file whose appearance, holding the wall time to start ticking, '
                         'starts the robots (written once the receiver is ready)')
    ap.add_argument('--seconds', type=float, required=True, help='how long robots tick')
    ap.add_argument('--grace', type=float, default=5.0, help='seconds to wait for last acks')
    ap.add_argument('--out', required=True)
    ap.add_argument('--frames-twice', action='store_true',
                    help='send obs frames with every transition (as drivers did before)')
    args = ap.parse_args()
    global FRAMES_ONCE
    FRAMES_ONCE = not args.frames_twice
    data = np.load(args.pool)
    pool = {k: data[k] for k in data.files if k != 'layout'}
    layout = {k: tuple(v) for k, v in json.loads(str(data['layout'])).items()}
    rclpy.init()
    node = rclpy.create_node(f'bench_robots_{args.first_k}')
    robots = Robots(node, args.robots.split(','), args.first_k, pool, layout, args.hz,
                    args.episode_steps)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    period = 1.0 / args.hz
    ticks, late = 0, 0
    go, start = Path(args.go), None
    try:
        while start is None or time.time() < start:
            executor.spin_once(timeout_sec=0.02)
            if start is None and go.exists() and go.read_text().strip():
                start = float(go.read_text())
        next_tick, end = time.time(), start + args.seconds
        while time.time() < end:
            now = time.time()
            if now >= next_tick:
                robots.tick()
                ticks += 1
                next_tick += period
                if time.time() > next_tick:  # a tick overran its period: skip, as a timer does
                    late += 1
                    next_tick = time.time() + period
            executor.spin_once(timeout_sec=max(0.0, min(0.01, next_tick - time.time())))
        deadline = time.time() + args.grace
        while time.time() < deadline and any(loop.outbox for loop in robots.loops.values()):
            executor.spin_once(timeout_sec=0.05)
    finally:
        counters = {}
        for loop in robots.loops.values():
            for key, value in loop.counters.items():
                counters[key] = counters.get(key, 0) + value
        unacked = sum(len(loop.outbox) for loop in robots.loops.values())
        with open(args.out, 'w') as f:
            json.dump({'acked': robots.acked, 'counters': counters, 'unacked': unacked,
                       'outbox_max': robots.outbox_max, 'ticks': ticks, 'late_ticks': late,
                       'cpu_s': sum(os.times()[:2]),
                       'wall_s': time.time() - (start or time.time()),
                       'top_ack': robots.top_ack}, f)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
