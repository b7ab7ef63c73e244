"""The driver's control loop, free of ROS: one ``tick`` per control period.

Pipeline (one control period of latency, as on a real robot):

    tick k:   apply a_t to the robot -> observe s_{t+1} -> publish it
    between:  the policy answers with a_{t+1}; the reward node labels s_{t+1}
    tick k+1: label(s_{t+1}) closes the transition (s_t, a_t, r, s_{t+1}); if it is a
              success or the time limit, the episode ends and the robot is reset;
              otherwise a_{t+1} is applied.

If the action or the label for the current observation has not arrived, the tick holds:
the robot is not commanded, nothing is recorded, and the same observation is sent again
and waits for its answer. After ``watchdog_s`` without progress the robot is told to hold its pose.
Transitions carry a per-robot ``seq``; they stay in the outbox until the replay store
acknowledges them as durable, and are re-sent if no ack comes in ``resend_after_s``.

Labels come from a reward node (``reward_source: node``, the default) or, for a robot that
scores itself (a gymnasium environment), from the robot right after each step
(``reward_source: env``): then the label of s_{t+1} is there at once and carries the
environment's own ``terminated`` and ``truncated``.

Actions come one per observation (``on_action``) or as a chunk of rows for the steps from
an observation's on (``on_chunk``, a policy slower than the clock): every row passes the
same guard, and a tick without a single action for its step takes the chunk's row for it,
so the clock does not wait on the model while a chunk covers the step. A single action
(a person's intervention) outranks the chunk's row for its step; an e-stop or a new
episode drops the chunk.

With ``sync_weights`` (set by the graph's ``mode: sync``), the robot waits after each episode, as
in the classic train-between-episodes loop: the next episode's first step holds
('waiting_weights') until the finished episode's transitions are all acknowledged and an
action comes from a weights version newer than any the episode was collected with.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from realrl_common.config import check
from realrl_common.transition import INSTRUCTION_BYTES, encode_text
from realrl_driver.core.safety import ActionGuard


class Robot(Protocol):
    """What a driver needs of a robot (simulated or real)."""

    state_dim: int
    action_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    observation_layout: dict[str, tuple[int, int]]
    """Named slices [start, stop) of the state vector."""
    action_units: str
    capabilities: tuple[str, ...]

    def reset(self, seed: int | None) -> np.ndarray: ...
    def apply(self, action: np.ndarray) -> np.ndarray: ...
    def hold(self) -> None: ...
    def render(self, camera: str, width: int, height: int) -> np.ndarray: ...


class SelfLabellingRobot(Robot, Protocol):
    """A robot that scores its own steps (``reward_source: env``)."""

    def outcome(self) -> 'Label':
        """The label of the state the last ``apply`` reached."""
        ...


REWARD_SOURCES = ('node', 'env')


@dataclass(frozen=True)
class Label:
    """The reward of arriving in an observation, and whether the episode ends there."""

    reward: float
    success: bool
    terminated: bool
    """The task is over (no bootstrapping past it): a success, or e.g. a pole that fell."""
    truncated: bool = False
    """The environment cut the episode short (its own time limit)."""


@dataclass(frozen=True)
class LoopConfig:
    """Settings of the episode loop: rate, episode length, seeds, watchdog, outbox."""

    robot_id: str = 'arm0'
    """Name of the robot; also its ROS namespace."""
    control_hz: float = 10.0
    """Rate of the control clock."""
    episode_max_steps: int = 50
    """Steps before an episode is cut off (truncated)."""
    seed: int = 0
    """Seed of the first episode; episode e uses seed + e."""
    watchdog_s: float = 0.5
    """Without a valid action for this long, the robot is told to hold its pose."""
    resend_after_s: float = 2.0
    """A transition not acknowledged as durable after this long is sent again."""
    outbox_limit: int = 100_000
    """Most unacknowledged transitions kept for re-sending; past it the loop holds."""
    cameras: tuple[str, ...] = ()
    """Cameras rendered into every observation (empty: state only)."""
    image_size: tuple[int, ...] = (128, 128)
    """Camera frame height and width in pixels."""
    reward_source: str = 'node'
    """Who labels observations: 'node' (a reward node, over /<robot>/reward_label) or 'env'
    (the robot itself, e.g. a gymnasium environment's reward, terminated and truncated)."""
    instruction: str = ''
    """The task in words, for policies that take language; it goes into every observation
    and transition (stored as UTF-8, at most 256 bytes). Empty: none."""
    instructions: tuple[str, ...] = ()
    """Instructions that change per episode: episode e gets instructions[e % len]
    (overrides `instruction`)."""
    sync_weights: bool = False
    """Wait after each episode until its transitions are durable and the policy serves newer
    weights (the graph's ``mode: sync`` sets it); False: never wait for training."""

    def __post_init__(self):
        check(bool(self.robot_id) and self.robot_id.replace('_', '').isalnum(),
              f'robot_id must be a non-empty name of letters, digits and _, got {self.robot_id!r}')
        check(self.control_hz > 0, f'control_hz must be > 0, got {self.control_hz}')
        check(self.episode_max_steps > 0,
              f'episode_max_steps must be > 0, got {self.episode_max_steps}')
        check(self.watchdog_s > 0, f'watchdog_s must be > 0, got {self.watchdog_s}')
        check(self.resend_after_s > 0, f'resend_after_s must be > 0, got {self.resend_after_s}')
        check(len(self.image_size) == 2 and min(self.image_size) > 0,
              f'image_size must be [height, width] > 0, got {list(self.image_size)}')
        check(self.reward_source in REWARD_SOURCES,
              f'reward_source must be one of {list(REWARD_SOURCES)}, got {self.reward_source!r}')
        for i, text in enumerate((self.instruction, *self.instructions)):
            what = 'instruction' if i == 0 else f'instructions[{i - 1}]'
            try:
                encode_text(text, INSTRUCTION_BYTES, what)
            except ValueError as e:
                check(False, str(e))

    def instruction_of(self, episode_id: int) -> str:
        """The language instruction of episode ``episode_id``."""
        if self.instructions:
            return self.instructions[episode_id % len(self.instructions)]
        return self.instruction


def check_reward_source(cfg: LoopConfig, robot) -> None:
    """ValueError unless the robot can serve cfg.reward_source."""
    if cfg.reward_source == 'env' and not callable(getattr(robot, 'outcome', None)):
        raise ValueError(f'reward_source: env needs a robot that scores its own steps '
                         f'(an outcome() method); {type(robot).__name__} has none: use '
                         f'reward_source: node and a reward node')


@dataclass
class Observation:
    """What the robot reports at one step: state and camera images."""

    episode_id: int
    step: int
    state: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)
    instruction: str = ''
    """The episode's language instruction (``LoopConfig.instruction_of``)."""


@dataclass
class Transition:
    """One closed step. Its fields are named as in ``realrl_common.transition.TRANSITION``,
    which turns them into the Transition message (fields it lacks get the schema's default)."""

    seq: int
    episode_id: int
    step: int
    state: np.ndarray
    action: np.ndarray
    reward: float
    next_state: np.ndarray
    terminated: bool
    truncated: bool
    policy_version: int
    intervention: bool
    images: dict[str, np.ndarray]
    next_images: dict[str, np.ndarray]
    instruction: str = ''


@dataclass
class EpisodeResult:
    """Summary of one finished episode."""

    episode_id: int
    steps: int
    episode_return: float
    success: bool
    truncated: bool
    policy_version: int
    interventions: int


@dataclass
class TickOutput:
    """What one control tick produced, for the node to publish."""

    observation: Observation | None = None
    repeated: bool = False
    """True when observation is the one already sent (the loop is holding)."""
    applied: np.ndarray | None = None
    """The action applied to the robot in this tick, if one was."""
    transition: Transition | None = None
    episode: EpisodeResult | None = None


@dataclass
class _Command:
    action: np.ndarray
    policy_version: int
    intervention: bool


@dataclass
class _Chunk:
    """The newest accepted chunk: bounded rows for steps start, start+1, ... of episode."""

    episode_id: int
    start: int
    rows: np.ndarray
    policy_version: int

    def row(self, episode_id: int, step: int) -> np.ndarray | None:
        i = step - self.start
        if episode_id != self.episode_id or not 0 <= i < len(self.rows):
            return None
        return self.rows[i]


@dataclass
class _Pending:
    """The step whose outcome (next observation + its label) is still to be recorded."""

    obs: Observation
    command: _Command


class EpisodeLoop:
    """The control loop of one robot without ROS: runs episodes at the control
    clock, applies guarded actions, closes transitions and keeps them until acked."""

    def __init__(self, cfg: LoopConfig, robot: Robot, first_seq: int = 1, first_episode: int = 0):
        self.cfg = cfg
        self.robot = robot
        check_reward_source(cfg, robot)
        self.guard = ActionGuard(robot.action_low, robot.action_high)
        self.next_seq = first_seq
        self.next_episode = first_episode
        self.obs: Observation | None = None
        self._pending: _Pending | None = None
        self._command: _Command | None = None
        self._chunk: _Chunk | None = None
        self._label: Label | None = None
        self._verdict: Label | None = None  # a person's success/failure for this episode
        self._return = 0.0
        self._interventions = 0
        self._newest_version = 0
        self._last_progress: float | None = None
        self._holding = False
        self._sync_after: int | None = None  # sync_weights: the version to wait past
        self.outbox: OrderedDict[int, tuple[float, Transition]] = OrderedDict()
        """seq -> (last send time, transition), in send order (a re-send moves it last)."""
        self._unacked_from = first_seq
        self.counters: Counter = Counter()

    # -- inputs -------------------------------------------------------------------------
    def on_action(self, action, episode_id: int, step: int, policy_version: int = 0,
                  intervention: bool = False) -> bool:
        """Offer an action for (episode_id, step); returns whether it was accepted."""
        want = (self.obs.episode_id, self.obs.step) if self.obs else (-1, -1)
        if not self.guard.check(action, episode_id, step, *want).ok:
            return False
        if self._command is not None and self._command.intervention and not intervention:
            return True  # a person's command for this step outranks the policy's
        self._command = _Command(self.guard.bounded(action), int(policy_version),
                                 bool(intervention))
        return True

    def on_chunk(self, actions, horizon: int, episode_id: int, step: int,
                 policy_version: int = 0) -> bool:
        """Offer a chunk: ``horizon`` rows of actions for steps step.. of episode_id;
        returns whether it was accepted. It replaces the chunk held, unless it is older
        (starts before it): then it is refused as stale."""
        want = (self.obs.episode_id, self.obs.step) if self.obs else (-1, -1)
        held = self._chunk
        if held is not None and (episode_id, step) < (held.episode_id, held.start):
            self.guard.refuse('stale')
            return False
        if not self.guard.check_chunk(actions, horizon, episode_id, step, *want).ok:
            return False
        rows = np.asarray(actions, np.float64).reshape(horizon, self.guard.dim)
        self._chunk = _Chunk(int(episode_id), int(step),
                             np.stack([self.guard.bounded(r) for r in rows]),
                             int(policy_version))
        self.counters['chunks_accepted'] += 1
        return True

    def on_label(self, episode_id: int, step: int, reward: float, success: bool,
                 terminated: bool | None = None, truncated: bool = False) -> None:
        """The label of observation (episode_id, step). ``terminated`` defaults to
        ``success`` (a reward node's success ends the task)."""
        if self.obs is not None and (episode_id, step) == (self.obs.episode_id, self.obs.step):
            if not np.isfinite(reward):
                self.counters['bad_labels'] += 1
                return
            self._label = Label(float(reward), bool(success),
                                bool(success if terminated is None else terminated),
                                bool(truncated))

    def on_human_label(self, episode_id: int, success: bool, reward: float) -> bool:
        """A person's verdict on the current episode (a key or pedal): the next step that
        closes in it ends the episode, successful or not, with this reward instead of the
        reward node's label. Returns whether it applied (not to an episode already over)."""
        if self.obs is None or episode_id != self.obs.episode_id or not np.isfinite(reward):
            self.counters['stale_human_labels'] += 1
            return False
        self._verdict = Label(float(reward), bool(success), True, False)
        self.counters['human_labels'] += 1
        return True

    def on_ack(self, committed_seq: int) -> int:
        """Drop acknowledged transitions from the outbox; returns how many were dropped.

        The outbox is in send order, and a re-send moves a transition to its end, so the
        acknowledged ones are not always at its front: they are found by seq, from the lowest
        one not yet acknowledged (or by a scan, when that range is larger than the outbox)."""
        if committed_seq < self._unacked_from:
            return 0
        if committed_seq - self._unacked_from >= len(self.outbox):
            gone = [seq for seq in self.outbox if seq <= committed_seq]
        else:
            gone = [seq for seq in range(self._unacked_from, committed_seq + 1)
                    if seq in self.outbox]
        for seq in gone:
            del self.outbox[seq]
        self._unacked_from = committed_seq + 1
        self.counters['transitions_acked'] += len(gone)
        return len(gone)

    def estop(self, engaged: bool) -> None:
        self.guard.estopped = engaged
        if engaged:
            self._command, self._chunk = None, None
            self.robot.hold()

    @property
    def label(self) -> Label | None:
        """The label of the current observation, once it has arrived."""
        return self._label

    # -- the clock ----------------------------------------------------------------------
    def tick(self, now: float) -> TickOutput:
        out = TickOutput()
        if self._last_progress is None:
            self._last_progress = now
        if self.obs is None:
            out.observation = self._reset(now)
            return out
        if self._pending is not None:
            if self._label is None and self._verdict is None:
                return self._hold(now, 'waiting_label')
            self._close_step(out, now)
            if out.episode is not None:
                out.observation = self._reset(now)
                return out
        if self._command is None:
            self._command_from_chunk()
        if self._waiting_weights():
            held = self._hold(now, 'waiting_weights')
            held.transition = out.transition
            return held
        if self._command is None or len(self.outbox) >= self.cfg.outbox_limit:
            held = self._hold(now, 'waiting_action' if self._command is None else 'outbox_full')
            held.transition = out.transition  # a step closed this tick still goes out now
            return held
        out.applied = self._command.action
        out.observation = self._advance(now)
        return out

    def due_resends(self, now: float) -> list[Transition]:
        """Transitions whose ack is overdue; their send time is restarted."""
        due = []
        for seq, (sent, tr) in self.outbox.items():
            if now - sent < self.cfg.resend_after_s:
                break  # the outbox is in send order
            due.append(tr)
        for tr in due:
            self.outbox.pop(tr.seq)
            self.outbox[tr.seq] = (now, tr)
        self.counters['resends'] += len(due)
        return due

    # -- steps --------------------------------------------------------------------------
    def _waiting_weights(self) -> bool:
        """sync_weights, after an episode: True while its transitions are unacknowledged or
        no action from newer weights has come (older ones are dropped). A person's command
        needs no new weights."""
        if self._sync_after is None:
            return False
        if self.outbox:
            return True
        cmd = self._command
        if cmd is None or (cmd.policy_version <= self._sync_after and not cmd.intervention):
            self._command = None
            if self._chunk is not None and self._chunk.policy_version <= self._sync_after:
                self._chunk = None
            return True
        self._sync_after = None
        self.counters['weights_waits'] += 1
        return False

    def _command_from_chunk(self) -> None:
        """The held chunk's row for the current step, if it has one (never under e-stop)."""
        if self._chunk is None or self.guard.estopped:
            return
        row = self._chunk.row(self.obs.episode_id, self.obs.step)
        if row is not None:
            self._command = _Command(row, self._chunk.policy_version, False)
            self.counters['chunk_steps'] += 1
            if self.obs.step > self._chunk.start:   # computed from an older observation
                self.counters['chunk_steps_ahead'] += 1

    def _images(self) -> dict[str, np.ndarray]:
        h, w = self.cfg.image_size
        return {cam: self.robot.render(cam, w, h) for cam in self.cfg.cameras}

    def _reset(self, now: float) -> Observation:
        episode = self.next_episode
        self.next_episode += 1
        state = self.robot.reset(self.cfg.seed + episode)
        self.obs = Observation(episode, 0, np.asarray(state, dtype=np.float32), self._images(),
                               self.cfg.instruction_of(episode))
        self._pending, self._command, self._label, self._chunk = None, None, None, None
        self._verdict = None
        self._return, self._interventions = 0.0, 0
        self._last_progress = now
        self.counters['episodes_started'] += 1
        return self.obs

    def _advance(self, now: float) -> Observation:
        cmd = self._command
        state = self.robot.apply(cmd.action)
        self._pending = _Pending(self.obs, cmd)
        self.obs = Observation(self.obs.episode_id, self.obs.step + 1,
                               np.asarray(state, dtype=np.float32), self._images(),
                               self.obs.instruction)
        self._command, self._label = None, None
        self._newest_version = max(self._newest_version, cmd.policy_version)
        self._interventions += int(cmd.intervention)
        self._last_progress, self._holding = now, False
        self.counters['steps'] += 1
        if self.cfg.reward_source == 'env':
            label = self.robot.outcome()
            self.on_label(self.obs.episode_id, self.obs.step, label.reward, label.success,
                          label.terminated, label.truncated)
        return self.obs

    def _close_step(self, out: TickOutput, now: float) -> None:
        label = self._verdict or self._label  # a person's verdict outranks the reward node
        reward, success, terminated = label.reward, label.success, label.terminated
        prev, obs = self._pending, self.obs
        truncated = not terminated and (label.truncated or
                                        obs.step >= self.cfg.episode_max_steps)
        tr = Transition(
            seq=self.next_seq, episode_id=obs.episode_id, step=prev.obs.step,
            state=prev.obs.state, action=prev.command.action, reward=reward,
            next_state=obs.state, terminated=terminated, truncated=truncated,
            policy_version=prev.command.policy_version, intervention=prev.command.intervention,
            images=prev.obs.images, next_images=obs.images, instruction=prev.obs.instruction)
        self.next_seq += 1
        self.outbox[tr.seq] = (now, tr)
        self.counters['transitions_sent'] += 1
        self._return += reward
        self._pending = None
        out.transition = tr
        if terminated or truncated:
            out.episode = EpisodeResult(obs.episode_id, obs.step, self._return, success,
                                        truncated, self._newest_version, self._interventions)
            self.counters['episodes_done'] += 1
            self.counters['successes'] += int(success)
            if self.cfg.sync_weights:
                self._sync_after = self._newest_version

    def _hold(self, now: float, why: str) -> TickOutput:
        """Nothing moves; the current observation goes out again in case it was lost
        (observations travel best-effort) or its answer came from a process not up yet."""
        self.counters[why] += 1
        if not self._holding and now - self._last_progress > self.cfg.watchdog_s:
            self.robot.hold()
            self._holding = True
            self.counters['watchdog_holds'] += 1
        return TickOutput(observation=self.obs, repeated=True)
