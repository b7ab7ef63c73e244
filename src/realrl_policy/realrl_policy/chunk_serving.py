"""The policy node's chunk path: ActionChunks computed beside the node's executor.

in:  the node's observations (``on_observation``)
out: /<robot>/action_chunk (ActionChunk)
One worker thread runs the inferences (``chunk_inference.infer_chunk``); the node's executor
decides when one starts (``chunk_scheduler.ChunkScheduler``, in steps) and sends what it
returns, woken by a guard condition. So observations keep being taken while a model runs,
and the scheduler is only ever touched from the executor's thread. Weights that arrive
while an inference runs are swapped in when it has finished (``on_idle``), so a chunk comes
from one whole set of weights.
"""
from __future__ import annotations

import json
import queue
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from realrl_common.convert import from_f32, image_array, to_f32
from realrl_common.qos import COMMAND_QOS
from realrl_interfaces.msg import ActionChunk
from realrl_policy.chunk_inference import infer_chunk, padded
from realrl_policy.chunk_scheduler import ChunkScheduler
from realrl_policy.inference import InferenceEngine
from realrl_policy.node_config import PolicyNodeConfig


class ChunkServer:
    """Chunks for the node's robots, computed off the executor's thread."""

    def __init__(self, node, engine: InferenceEngine, cfg: PolicyNodeConfig,
                 on_idle: Callable[[], None]):
        self._node, self._engine, self._cfg, self._on_idle = node, engine, cfg, on_idle
        self._pubs = {rid: node.create_publisher(ActionChunk, f'/{rid}/action_chunk',
                                                 COMMAND_QOS) for rid in cfg.robot_ids}
        self.schedulers = {rid: ChunkScheduler(cfg.chunks == 'overlap', cfg.chunk_start_fraction)
                           for rid in cfg.robot_ids}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix='chunk_inference')
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = node.create_guard_condition(self._collect)
        self._rng = np.random.default_rng(cfg.seed)
        self.in_flight = 0
        self.inference_s: deque[float] = deque(maxlen=1000)
        """Seconds each recent inference took (padding included)."""
        self.failures = 0

    @property
    def idle(self) -> bool:
        return self.in_flight == 0

    def on_observation(self, msg) -> None:
        """Start an inference from this observation if its robot's schedule says so."""
        rid = msg.robot_id
        if not self.schedulers[rid].observed(int(msg.episode_id), int(msg.step)):
            return
        images = None
        if getattr(self._engine.actor, 'takes_images', False):
            images = {img.header.frame_id: image_array(img) for img in msg.images}
        self.in_flight += 1
        job = self._pool.submit(self._infer, rid, from_f32(msg.state), msg.instruction, images)
        job.add_done_callback(self._report_unexpected)

    def _report_unexpected(self, job) -> None:
        error = job.exception()
        if error is not None:
            self._node.get_logger().error(f'chunk inference raised {error!r}')

    def _infer(self, rid: str, state, instruction: str, images) -> None:  # worker thread
        def run():
            return infer_chunk(self._engine, rid, state, self._rng, instruction=instruction,
                               images=images, random_horizon=self._cfg.random_chunk_rows,
                               hold_rows=self._cfg.hold_rows)
        # a held single action (hold_rows) replaces the previous one; a plan is blended in
        actor = self._engine.actor
        blend = actor is None or callable(getattr(actor, 'act_chunk', None))
        # whatever happens, the executor hears of it: a lost answer would stall the robot
        result = (rid, None, 0, 0.0, RuntimeError('the actor raised an unexpected error'), blend)
        try:
            (rows, version), took = padded(run, self._cfg.min_inference_s)
            result = (rid, rows, version, took, None, blend)
        except (ValueError, RuntimeError, KeyError) as e:
            result = (rid, None, 0, 0.0, e, blend)
        finally:
            self._done.put(result)
            self._wake.trigger()

    def _collect(self) -> None:  # executor thread
        while True:
            try:
                rid, rows, version, took, error, blend = self._done.get_nowait()
            except queue.Empty:
                break
            self.in_flight -= 1
            sched = self.schedulers[rid]
            if error is not None:
                sched.cancel()
                self.failures += 1
                self._node.get_logger().error(
                    f'no chunk for {rid}: {error} ({self.failures} so far)',
                    throttle_duration_sec=5.0)
                continue
            self.inference_s.append(took)
            plan = sched.finished(rows, version, blend=blend)
            if plan is not None:
                self._publish(rid, plan)
        if self.idle:
            self._on_idle()

    def _publish(self, rid: str, plan) -> None:
        msg = ActionChunk(robot_id=rid, episode_id=plan.episode_id, step=plan.start,
                          horizon=len(plan.rows), actions=to_f32(plan.rows.reshape(-1)),
                          policy_version=plan.version)
        msg.header.stamp = self._node.get_clock().now().to_msg()
        self._pubs[rid].publish(msg)

    def close(self) -> None:
        """Wait for the inference in flight, then stop the worker; log what inference took
        (benchmarks read this line)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        took = np.asarray(self.inference_s, np.float64)
        if took.size:
            stats = {'n': int(took.size), 'p50_s': round(float(np.median(took)), 5),
                     'p99_s': round(float(np.percentile(took, 99)), 5),
                     'dropped': sum(s.dropped for s in self.schedulers.values())}
            self._node.get_logger().info(f'chunk inference: {json.dumps(stats)}')
