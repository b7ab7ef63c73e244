"""ROS 2 adapter of a robot driver: a lifecycle node over ``EpisodeLoop``.

States (ros2_control's meanings): unconfigured — no connection; inactive — connected,
described, heartbeat running, no motion; active — control clock running, commands
accepted. Topics are relative, so the node runs in the robot's namespace:

  out: observation, transition, episode, status        in: action, reward_label, /replay/ack
  services: ~/describe (RobotDescription), ~/estop (std_srvs/SetBool)
  visualization (viz_hz): joint_states, /tf, viz/markers, camera/<name>/image_raw

With ``reward_source: env`` the robot labels its own steps: the driver then publishes
``reward_label`` itself (for observers) instead of listening to it.

Every action on ``action`` is accounted for: accepted, rejected by reason (the guard's, or
``wrong_robot_id``), or lost before it was taken (gaps in its publisher's sequence numbers,
or the middleware's message-lost event); the status carries the counts and what the loop
waits for. The counts (and a robot's own warnings) are logged from the status timer, at most
every ``COUNT_LOG_PERIOD_S`` per kind (count_logs.py says why not from the callbacks).
"""
from __future__ import annotations

import json
import os
import time
from typing import Callable

import numpy as np
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.subscription_content_filter_options import ContentFilterOptions
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool

from realrl_common.config import ConfigError
from realrl_common.convert import fill_image, stamp_ns, to_f32
from realrl_common.node_main import freeze_heap, spin_node
from realrl_common.plugins import robot_kind
from realrl_common.qos import COMMAND_QOS, DATA_QOS, LATCHED_QOS, SENSOR_QOS, STATUS_QOS
from realrl_common.ros_params import read_config
from realrl_common.scheduling import (
    run_this_thread_realtime,
    scheduling_granted,
    thread_scheduling,
)
from realrl_common.transition import TRANSITION
from realrl_driver.cameras.rig import CameraError, build_robot, observed_cameras
from realrl_driver.core.clock_stats import PeriodRecorder
from realrl_driver.core.count_logs import CountLogger
from realrl_driver.core.driver_config import DriverNodeConfig  # noqa: F401 (re-exported)
from realrl_driver.core.episode_loop import EpisodeLoop, LoopConfig, check_reward_source
from realrl_driver.core.safety import LossCounter
from realrl_driver.viz.publisher import VizPublisher
from realrl_interfaces.msg import (
    Action,
    ActionChunk,
    DriverStatus,
    EpisodeResult,
    Observation,
    RewardLabel,
    RobotDescription,
    Transition,
    TransitionAck,
)
from realrl_interfaces.srv import Describe, SenderState

SENDER_STATE_SERVICE = '/replay/sender_state'
COUNT_LOG_PERIOD_S = 10.0
WAIT_COUNTERS = {'waiting_label': 'reward_label', 'waiting_action': 'action',
                 'outbox_full': 'outbox', 'waiting_weights': 'weights'}
"""The loop's hold counters, and what the status calls each wait."""


class DriverNode(LifecycleNode):
    """Generic driver node; ``make_robot(cfg)`` builds the robot when configured."""

    def __init__(self, name: str, config_cls: type, make_robot: Callable, kind: str):
        super().__init__(name, automatically_declare_parameters_from_overrides=True)
        self._config_cls, self._make_robot, self._kind = config_cls, make_robot, kind
        self.cfg = None
        self.robot = None
        self.loop: EpisodeLoop | None = None
        self._timer = None
        self._viz: VizPublisher | None = None
        self._tick_clock = PeriodRecorder()
        self._state_label = 'unconfigured'
        self._camera_failing = False  # a camera's frames are too old: the robot holds
        self._camera_error_logged = -1e9
        self._lost = LossCounter()
        self._count_log = CountLogger(self.get_logger(), COUNT_LOG_PERIOD_S)
        self._wait_mark: dict | None = None  # the loop's counters at the previous status
        self._status_pub = self.create_publisher(DriverStatus, 'status', STATUS_QOS)
        self._status_timer = self.create_timer(0.2, self._publish_status)

    # -- lifecycle ----------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.cfg = read_config(self, self._config_cls)
            self.robot = build_robot(self._make_robot, self.cfg)  # + real_cameras, if any
            check_reward_source(self.cfg, self.robot)
            self._tick_clock.configure(getattr(self.cfg, 'timing_log', ''))
            applied_log = getattr(self.cfg, 'applied_log', '')
            self._applied_log = open(applied_log, 'a', buffering=1) if applied_log else None
            self._set_priority(getattr(self.cfg, 'nice', 0))
            self._set_realtime(getattr(self.cfg, 'realtime_priority', 0))
        except (ConfigError, OSError, RuntimeError, ValueError) as e:
            self.get_logger().error(f'configure failed: {e}')
            self._close_robot()
            self.robot = None
            return TransitionCallbackReturn.FAILURE
        self._obs_pub = self.create_lifecycle_publisher(Observation, 'observation', SENSOR_QOS)
        self._tr_pub = self.create_lifecycle_publisher(Transition, 'transition', DATA_QOS)
        self._ep_pub = self.create_lifecycle_publisher(EpisodeResult, 'episode', DATA_QOS)
        self._desc_pub = self.create_publisher(RobotDescription, 'description', LATCHED_QOS)
        self._driver_subs = [
            self._action_subscription(),
            self.create_subscription(ActionChunk, 'action_chunk', self._on_chunk, COMMAND_QOS),
            self._ack_subscription(),
        ]
        self._label_pub = None
        if self.cfg.reward_source == 'env':
            self._label_pub = self.create_lifecycle_publisher(RewardLabel, 'reward_label',
                                                              COMMAND_QOS)
        else:
            self._driver_subs.append(self.create_subscription(
                RewardLabel, 'reward_label', self._on_label, COMMAND_QOS))
        self._driver_services = [
            self.create_service(Describe, '~/describe', self._on_describe),
            self.create_service(SetBool, '~/estop', self._on_estop),
        ]
        self._sender_client = self.create_client(SenderState, SENDER_STATE_SERVICE)
        self._resume_future, self._resume_asked, self._resume_warned = None, 0.0, False
        self._viz = (VizPublisher(self, self.cfg.robot_id, self.cfg.viz_hz,
                                  observed_cameras(self.cfg)) if self.cfg.viz_hz > 0 else None)
        self._desc_pub.publish(self.description())
        self._state_label = 'inactive'
        self.get_logger().info(f'configured {self._kind} robot {self.cfg.robot_id!r}')
        return TransitionCallbackReturn.SUCCESS

    def _action_subscription(self):
        """The action subscription, with the middleware's message-lost event where it has
        one (gaps in sequence numbers are counted either way)."""
        lost = SubscriptionEventCallbacks(
            message_lost=lambda info: self._lost.middleware_lost(info.total_count_change))
        try:
            return self.create_subscription(Action, 'action', self._on_action, COMMAND_QOS,
                                            event_callbacks=lost)
        except UnsupportedEventTypeError:
            return self.create_subscription(Action, 'action', self._on_action, COMMAND_QOS)

    def _ack_subscription(self):
        """The replay node's acks of this robot only: /replay/ack carries every robot's, and
        the middleware drops the others (a content filter) before they wake the control
        thread; with sixteen robots they were most of its wake-ups. A middleware without
        content filtering delivers them all, and ``_on_ack`` skips the others' acks."""
        only_mine = ContentFilterOptions('robot_id = %0', [f"'{self.cfg.robot_id}'"])
        return self.create_subscription(TransitionAck, '/replay/ack', self._on_ack, DATA_QOS,
                                        content_filter_options=only_mine)

    def _set_priority(self, nice: int) -> None:
        if nice == 0 or os.getpriority(os.PRIO_PROCESS, 0) == nice:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except PermissionError:
            self.get_logger().warning(f'cannot raise the control loop priority to nice {nice} '
                                      f'(needs CAP_SYS_NICE); the clock may jitter under load')

    def _set_realtime(self, priority: int) -> None:
        """SCHED_FIFO for this thread, the one that spins the executor and so runs the
        control timer (Linux scheduling is per thread; DDS threads keep theirs)."""
        refused = run_this_thread_realtime(priority)
        if refused:
            self.get_logger().warning(f'control thread: {refused}; the clock may jitter under '
                                      f'load')

    def _report_scheduling(self) -> None:
        """Log what the kernel gives the thread running the control timer (read back, so
        a priority that was asked for but not granted shows)."""
        self._scheduling_reported = True
        asked_rt = getattr(self.cfg, 'realtime_priority', 0)
        asked_nice = getattr(self.cfg, 'nice', 0)
        got = thread_scheduling()
        refused = [k for k, ok in scheduling_granted(asked_rt, asked_nice, got).items()
                   if ok is False]
        self.get_logger().info(
            f'control thread {got["tid"]} of {self.cfg.robot_id}: {got["policy"]} priority '
            f'{got["rt_priority"]}, nice {got["nice"]} (asked realtime_priority {asked_rt}, '
            f'nice {asked_nice})'
            + (f'; NOT granted: {", ".join(refused)}' if refused else ''))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        freeze_heap()  # the robot built at configure is long-lived: keep it out of GC pauses
        self._activated_at = time.monotonic()
        self._scheduling_reported = False
        self._timer = self.create_timer(1.0 / self.cfg.control_hz, self._tick)
        self._state_label = 'active'
        self.get_logger().info(f'active at {self.cfg.control_hz:g} Hz')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_clock()
        self._state_label = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_clock()
        self._teardown()
        self._state_label = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_clock()
        self._state_label = 'finalized'
        return TransitionCallbackReturn.SUCCESS

    def close(self):
        """Hold the robot and log the counters; called once when the process ends."""
        if getattr(self, '_applied_log', None) is not None:
            self._applied_log.close()
        if self.loop is not None:
            counters = dict(self.loop.counters, clipped_into_bounds=self.loop.guard.clipped,
                            bad_chunk_rows=self.loop.guard.bad_chunk_rows)
            self.get_logger().info('counters: ' + json.dumps(counters) +
                                   ' rejected: ' + json.dumps(dict(self.loop.guard.rejected)) +
                                   f' actions lost: {self._lost.lost}')
        self._stop_clock()  # the robot holds ...
        self._close_robot()  # ... before its connections close

    def _stop_clock(self):
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        if self.robot is not None:
            self.robot.hold()
        self._tick_clock.flush()

    def _close_robot(self):
        """Release what the robot holds open (camera threads, connections), once held."""
        close = getattr(self.robot, 'close', None)
        if callable(close):
            try:
                close()
            except Exception as e:  # noqa: BLE001 (closing must not stop the shutdown)
                self.get_logger().warning(f'closing the robot failed: {e}')

    def _teardown(self):
        for sub in getattr(self, '_driver_subs', []):
            self.destroy_subscription(sub)
        for srv in getattr(self, '_driver_services', []):
            self.destroy_service(srv)
        for pub in ('_obs_pub', '_tr_pub', '_ep_pub', '_label_pub'):
            if getattr(self, pub, None) is not None:
                self.destroy_lifecycle_publisher(getattr(self, pub))
                delattr(self, pub)
        if hasattr(self, '_desc_pub'):
            self.destroy_publisher(self._desc_pub)
            self.destroy_client(self._sender_client)
            del self._desc_pub, self._sender_client
        self._driver_subs, self._driver_services = [], []
        if self._viz is not None:
            self._viz.destroy()
            self._viz = None
        self._close_robot()
        self.loop, self.robot = None, None

    def _loop_config(self) -> LoopConfig:
        fields = LoopConfig.__dataclass_fields__
        values = {k: getattr(self.cfg, k) for k in fields}
        values['cameras'] = observed_cameras(self.cfg)
        return LoopConfig(**values)

    def _start_loop(self, now: float) -> bool:
        """Create the episode loop once the replay node said where this robot's data ends,
        so sequence and episode numbers continue instead of repeating (never blocks)."""
        if self.cfg.replay_wait_s <= 0:
            self.loop = EpisodeLoop(self._loop_config(), self.robot)
            return True
        future = self._resume_future
        if future is not None and future.done():
            res = future.result()
            first_seq, first_episode = ((int(res.committed_seq) + 1, int(res.last_episode_id) + 1)
                                        if res.known else (1, 0))
            self.loop = EpisodeLoop(self._loop_config(), self.robot, first_seq, first_episode)
            self.get_logger().info(f'control loop starts at seq {first_seq}, '
                                   f'episode {first_episode}')
            return True
        if future is None or now - self._resume_asked > 2.0:
            if self._sender_client.service_is_ready():
                self._resume_future = self._sender_client.call_async(
                    SenderState.Request(robot_id=self.cfg.robot_id))
                self._resume_asked = now
        if now - self._activated_at > self.cfg.replay_wait_s and not self._resume_warned:
            self._resume_warned = True
            self.get_logger().error(
                f'no answer from {SENDER_STATE_SERVICE} after {self.cfg.replay_wait_s:g}s; the '
                f'robot holds until the replay node runs (or set replay_wait_s: 0)')
        return False

    # -- callbacks ----------------------------------------------------------------------
    def _on_action(self, msg: Action, info: dict):
        gid = info.get('publisher_gid')
        self._lost.taken(None if gid is None else bytes(gid.get('data', b'')),
                         info.get('publication_sequence_number'))
        if self.loop is None:
            return
        if msg.robot_id != self.cfg.robot_id:  # empty, or another robot's
            self.loop.guard.refuse('wrong_robot_id')
            return
        action = np.frombuffer(msg.action, dtype=np.float32) if len(msg.action) else np.zeros(0)
        self.loop.on_action(action, msg.episode_id, msg.step, msg.policy_version, msg.intervention)

    def _on_chunk(self, msg: ActionChunk):
        if self.loop is None:
            return
        if msg.robot_id != self.cfg.robot_id:
            self.loop.guard.refuse('wrong_robot_id')
            return
        rows = np.frombuffer(msg.actions, dtype=np.float32) if len(msg.actions) else np.zeros(0)
        self.loop.on_chunk(rows, msg.horizon, msg.episode_id, msg.step, msg.policy_version)

    def _on_label(self, msg: RewardLabel):
        if self.loop is None or msg.robot_id != self.cfg.robot_id:
            return
        if msg.human:
            if self.loop.on_human_label(msg.episode_id, msg.success, msg.reward):
                self.get_logger().info(f'a person marked episode {msg.episode_id} a '
                                       f'{"success" if msg.success else "failure"}: it ends')
            return
        self.loop.on_label(msg.episode_id, msg.step, msg.reward, msg.success)

    def _on_ack(self, msg: TransitionAck):
        if self.loop is not None and msg.robot_id == self.cfg.robot_id:
            self.loop.on_ack(msg.committed_seq)

    def _on_describe(self, request, response):
        response.description = self.description()
        return response

    def _on_estop(self, request, response):
        if self.loop is None:
            response.success, response.message = False, 'not configured'
            return response
        self.loop.estop(request.data)
        response.success = True
        response.message = 'e-stop engaged: robot holds' if request.data else 'e-stop released'
        self.get_logger().warning(response.message)
        return response

    def _tick(self):
        now = time.monotonic()
        self._tick_clock.record(now)
        if not self._scheduling_reported:
            self._report_scheduling()
        if self.loop is None and not self._start_loop(now):
            return
        stamp = self.get_clock().now().to_msg()
        for tr in self.loop.due_resends(now):  # in order, before anything newer
            self._tr_pub.publish(self._transition_msg(tr, stamp))
        try:
            out = self.loop.tick(now)
        except CameraError as e:  # raised before the robot moved: hold, retry next tick
            self._camera_failed(now, e)
            return
        self._camera_failing = False
        if out.repeated:
            self._tick_clock.mark_held()
        if out.applied is not None and self._applied_log is not None:
            self._applied_log.write(json.dumps([float(x) for x in out.applied]) + '\n')
        if out.transition is not None:
            self._tr_pub.publish(self._transition_msg(out.transition, stamp))
        if out.episode is not None:
            self._ep_pub.publish(self._episode_msg(out.episode, stamp))
        if out.observation is not None:
            self._obs_pub.publish(self._observation_msg(out.observation, stamp))
            label = self.loop.label
            if self._label_pub is not None and label is not None and not out.repeated:
                obs = out.observation
                self._label_pub.publish(RewardLabel(
                    robot_id=self.cfg.robot_id, episode_id=obs.episode_id, step=obs.step,
                    reward=label.reward, success=label.success))
        if self._viz is not None:
            self._viz.maybe_publish(now, self.robot, out.observation and out.observation.images,
                                    stamp)

    def _camera_failed(self, now: float, error: CameraError) -> None:
        if not self._camera_failing:
            self._camera_failing = True
            self.robot.hold()
        if now - self._camera_error_logged > 5.0:
            self._camera_error_logged = now
            self.get_logger().error(f'robot holds: {error}')

    # -- messages -----------------------------------------------------------------------
    def description(self) -> RobotDescription:
        r, cfg = self.robot, self.cfg
        layout = r.observation_layout
        h, w = cfg.image_size
        cameras = observed_cameras(cfg)
        return RobotDescription(
            robot_id=cfg.robot_id, kind=getattr(r, 'kind', self._kind),
            control_hz=float(cfg.control_hz),
            state_dim=int(r.state_dim), state_names=list(layout),
            state_starts=[int(a) for a, _ in layout.values()],
            state_stops=[int(b) for _, b in layout.values()],
            action_dim=int(r.action_dim), action_low=to_f32(r.action_low),
            action_high=to_f32(r.action_high), action_units=r.action_units,
            camera_names=list(cameras), image_height=h if cameras else 0,
            image_width=w if cameras else 0, episode_max_steps=cfg.episode_max_steps,
            capabilities=list(r.capabilities))

    def _images(self, frames: dict) -> list:
        msgs = []
        for cam, frame in frames.items():
            img = Image()
            fill_image(img, frame, cam)
            msgs.append(img)
        return msgs

    def _observation_msg(self, obs, stamp) -> Observation:
        msg = Observation(robot_id=self.cfg.robot_id, episode_id=obs.episode_id, step=obs.step,
                          state=to_f32(obs.state), images=self._images(obs.images),
                          instruction=obs.instruction)
        msg.header.stamp = stamp
        return msg

    def _transition_msg(self, tr, stamp) -> Transition:
        """The loop's transition as a message, field by field from the one schema. Past an
        episode's first step its obs frames are the previous transition's next frames, which
        the replay node holds: they are not sent again (``IMAGES_FROM_PREVIOUS``)."""
        return TRANSITION.to_message(Transition(), self.cfg.robot_id, tr.seq,
                                     {**vars(tr), 'stamp_ns': stamp_ns(stamp)}, Image,
                                     from_previous=tr.step > 0)

    def _episode_msg(self, ep, stamp) -> EpisodeResult:
        msg = EpisodeResult(robot_id=self.cfg.robot_id, episode_id=ep.episode_id,
                            steps=ep.steps, episode_return=float(ep.episode_return),
                            success=ep.success, truncated=ep.truncated,
                            policy_version=ep.policy_version, interventions=ep.interventions)
        msg.header.stamp = stamp
        return msg

    def _publish_status(self):
        msg = DriverStatus(robot_id=self.cfg.robot_id if self.cfg else self.get_namespace(),
                           lifecycle_state=self._state_label)
        msg.header.stamp = self.get_clock().now().to_msg()
        if self.loop is not None:
            c = self.loop.counters
            msg.episodes = c['episodes_done']
            msg.steps = c['steps']
            msg.actions_applied = c['steps']
            msg.actions_rejected = self.loop.guard.rejected_total
            msg.actions_received = self.loop.guard.received
            msg.rejected_reasons = list(self.loop.guard.rejected)
            msg.rejected_counts = list(self.loop.guard.rejected.values())
            msg.waiting_for = self._waiting_for()
            msg.holds = c['watchdog_holds']
            msg.transitions_sent = c['transitions_sent']
            msg.transitions_acked = c['transitions_acked']
            msg.achieved_hz = self._tick_clock.achieved_hz()
            self._count_log.actions(self.loop.guard.rejected, self._lost.lost)
            self._count_log.robot_warnings(getattr(self.robot, 'inner', self.robot))
            self._count_log.waiting(msg.waiting_for, self.cfg.robot_id)
        msg.actions_lost = self._lost.lost
        self._status_pub.publish(msg)

    def _waiting_for(self) -> str:
        """What the loop held for most since the previous status, if it made no step."""
        c = self.loop.counters
        now = {k: c[k] for k in ('steps', *WAIT_COUNTERS)}
        before, self._wait_mark = self._wait_mark, now
        if before is None or now['steps'] != before['steps']:
            return ''
        grown = {k: now[k] - before[k] for k in WAIT_COUNTERS}
        most = max(grown, key=grown.get)
        return WAIT_COUNTERS[most] if grown[most] > 0 else ''


def run_driver(name: str, config_cls: type, make_robot: Callable, kind: str, args=None) -> None:
    """Entry point body shared by all driver kinds."""
    spin_node(lambda: DriverNode(name, config_cls, make_robot, kind), name, args)


def run_robot(kind: str, args=None) -> None:
    """Entry point body of a driver executable: the robot kind registered as ``kind``
    (``realrl.robots`` entry points) — its driver config and its robot factory."""
    robot = robot_kind(kind)
    run_driver('driver', robot.config, robot.factory(), kind, args)
