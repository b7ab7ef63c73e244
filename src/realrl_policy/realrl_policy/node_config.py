"""The policy node's parameters (no ROS imports: graphs validate them without rclpy)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from realrl_common.config import check
from realrl_common.plugins import NodeKind
from realrl_common.scheduling import check_realtime_priority

CHUNK_MODES = ('off', 'overlap', 'blocking')
DEVICE = re.compile(r'^(cpu|cuda(:\d+)?)$')


@dataclass(frozen=True)
class PolicyNodeConfig:
    """Parameters of the policy node."""

    robot_ids: tuple[str, ...] = ('arm0',)
    """Robots this policy serves (their driver namespaces)."""
    deterministic: bool = False
    """Act with the mean action (evaluation) instead of sampling (training)."""
    seed: int = 0
    """Seed of the exploration noise."""
    weights_topic: str = '/learner/weights'
    """Where versioned weight chunks arrive from."""
    weights_file: str = ''
    """A learner's checkpoint (.pt) whose actor is served, frozen: weights_topic is not
    listened to (`realrl eval`). '': weights from weights_topic."""
    listen_after_file: bool = False
    """With weights_file: serve it, then take new versions from weights_topic too. A
    learner that freezes part of the actor publishes only the trained part after its first
    version; the file's actor is the base those apply on, for a policy started later."""
    chunks: str = 'off'
    """How actions go out: 'off' (one Action per observation), 'overlap' (ActionChunks on
    /<robot>/action_chunk, the next one computed while the current one runs, so the
    control clock does not wait on a slow model) or 'blocking' (the next chunk computed only
    when the current one has run out; the baseline of bench/chunk_latency.py)."""
    chunk_start_fraction: float = 0.5
    """With chunks 'overlap': start the next inference when at most this fraction of the
    current chunk is left (earlier when inference was measured to take longer)."""
    random_chunk_rows: int = 10
    """Rows of the random chunks sent before the first weights arrive."""
    hold_rows: int = 1
    """With chunks on, an actor that answers one action (not a chunk actor) sends it as a
    chunk of this many rows: the action repeated. A driver whose answer for step t comes
    after its tick for t+1 (a round trip to a cloud policy longer than the control period)
    then runs step t+1 on the answer for step t instead of holding: one period of
    staleness per extra row at most, each row checked by the driver's guard, and counted
    by the driver (``chunk_steps_ahead``). 1: no repeat."""
    realtime_priority: int = 0
    """SCHED_FIFO priority (1..99) of the thread that takes observations and publishes the
    answers, so that they are not late for want of a CPU on a loaded machine (drivers hold
    a tick until both the action and the label of its observation are back). Below every
    served driver's realtime_priority, so no answer delays a clock (graph_checks). 0: normal
    scheduling (realrl_common.scheduling)."""
    device: str = 'cpu'
    """Where the actor runs: 'cpu', 'cuda' or 'cuda:N'. On a GPU new weights are copied into
    a second copy of the actor on a stream of their own and swapped in between two steps
    (realrl_policy.device_swap), so no step waits for a transfer."""
    min_inference_s: float = 0.0
    """Pad every chunk inference to at least this long (emulates a slower model; for
    benchmarks and tests of chunk scheduling). 0: off."""

    def __post_init__(self):
        check(len(self.robot_ids) > 0, 'robot_ids must name at least one robot, e.g. [arm0]')
        check(self.chunks in CHUNK_MODES,
              f'chunks must be one of {list(CHUNK_MODES)}, got {self.chunks!r}')
        check(0.0 <= self.chunk_start_fraction <= 1.0,
              f'chunk_start_fraction must be in [0, 1], got {self.chunk_start_fraction}')
        check(self.random_chunk_rows >= 1,
              f'random_chunk_rows must be >= 1, got {self.random_chunk_rows}')
        check(not self.weights_file or os.path.isfile(self.weights_file),
              f'weights_file {self.weights_file!r}: no such file; give a checkpoint '
              f'(<run>/checkpoints/latest.pt) or leave it empty')
        check(not self.listen_after_file or bool(self.weights_file),
              'listen_after_file needs a weights_file to start from; without one the policy '
              'listens to weights_topic anyway: drop listen_after_file')
        check(self.hold_rows >= 1, f'hold_rows must be >= 1, got {self.hold_rows}')
        check_realtime_priority(self.realtime_priority)
        check(bool(DEVICE.match(self.device)),
              f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        check(self.min_inference_s >= 0,
              f'min_inference_s must be >= 0, got {self.min_inference_s}')


NODE = NodeKind(role='policy', config=PolicyNodeConfig)
