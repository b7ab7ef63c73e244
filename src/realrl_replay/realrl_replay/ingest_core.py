"""The replay node's half of the transition protocol, free of ROS (``replay_node.py`` adapts
it to topics and services).

Rules, each unit-tested in ``test/unit/replay/test_ingest_core.py``:

- **Gap-free sequences.** Per robot, only seq = last accepted + 1 is taken (after a reopen:
  the committed seq + 1). An older seq is a re-send the ack covers (``duplicate``); a newer
  one would let the cumulative ack cover transitions never stored, so it is dropped and
  waits for its re-send, in order (``out_of_order``).
- **Early transitions.** Until the descriptions of every robot in ``robot_ids`` arrived the
  store does not exist: transitions are kept (unacknowledged) and taken, in order, once it is
  created.
- **Embodiment padding.** Each row holds the shared space's padded state and action plus its
  ``embodiment``; a robot whose description the store's space does not hold is not stored.
- **Records** are built from the one transition schema (``realrl_common.transition``):
  fields by name, cameras the robot lacks as black frames, defaults for what a sender left
  out; a record that does not fit (its field or shape named) is rejected, counted, and never
  stored. Records taken are appended to the writer together at the next tick.
- **Frames sent once.** A transition flagged ``IMAGES_FROM_PREVIOUS`` carries no obs
  frames: they are the next frames of the robot's previous transition (seq - 1, same
  episode, step - 1), which the core keeps per robot (after a reopen: read once from the
  store's row of the committed seq). A flagged transition without that predecessor is
  rejected, naming it.
- **Acks** only for what a finished commit made durable: ``tick`` returns each robot whose
  committed seq rose; ``all_acks`` repeats them.
- **Commit points.** A tick commits up to the last chunk boundary of the image fields once
  one was passed (the marker then carries no image rows), and everything pending only once
  its oldest row waited ``max_wait_s`` (light load: the marker carries the image tail).
- **Reopen.** Per robot, the committed seq and the last episode id come from the commit
  marker (``ReplayWriter.committed_seq`` / ``committed_episode``), so opening does not read
  the rows; the embodiments from the store's metadata.
"""
from __future__ import annotations

import os
import time
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from realrl_common.embodiment import SharedSpace
from realrl_common.transition import (
    ACTION_DIM,
    EMBODIMENT,
    EPISODE_ID,
    IMAGES_FROM_PREVIOUS,
    ROBOT_ID,
    SEQ,
    STATE_DIM,
    TRANSITION,
    TransitionSchema,
    encode_text,
)
from realrl_replay.config import WriterConfig
from realrl_replay.transition_schema import store_schema
from realrl_replay.writer import ReplayWriter

STORED, EARLY, DUPLICATE, OUT_OF_ORDER, REJECTED = (
    'stored', 'early', 'duplicate', 'out_of_order', 'rejected')
"""Outcomes of ``IngestCore.on_transition``."""


@dataclass(frozen=True)
class Ack:
    """What ``/replay/ack`` says of one robot."""

    robot_id: str
    committed_seq: int
    stored: int


@dataclass(frozen=True)
class Outcome:
    """What became of one transition; ``error`` says why it was rejected."""

    status: str
    error: str = ''


@dataclass(frozen=True)
class SenderState:
    """The answer to a driver asking where to continue its numbering."""

    known: bool
    committed_seq: int
    last_episode_id: int
    stored: int


class IngestCore:
    """The store's single writer behind the replay node: one call per message or tick."""

    def __init__(self, store_path: str | os.PathLike, robot_ids: Sequence[str],
                 writer_config: WriterConfig | None = None, metadata: Mapping | None = None,
                 schema: TransitionSchema = TRANSITION, max_wait_s: float = 0.2):
        self.path = Path(store_path)
        self.robot_ids = tuple(robot_ids)
        self.writer_config = writer_config or WriterConfig()
        self.metadata = dict(metadata or {})
        """Extra metadata written into a store this core creates (e.g. the node's config)."""
        self.schema = schema
        self.descriptions: dict[str, dict] = {}
        self.writer: ReplayWriter | None = None
        self.space: SharedSpace | None = None
        """Shared space of the store's robots (None: a store from before it, unpadded)."""
        self.embodiment: dict[str, int] = {}
        """Robot -> its embodiment index in space; a robot without one is not stored."""
        self.max_wait_s = max_wait_s
        """Longest a row waits for a chunk boundary before a commit takes it anyway."""
        self.counters: Counter = Counter()
        self._arrivals: deque = deque()
        """(rows appended so far, time) per append not yet handed to a commit."""
        self._appended = 0
        self._accepted: dict[str, int] = {}
        self._early: list[dict] = []
        self._inflight: Future | None = None
        self._acked: dict[str, int] = {}
        self._cameras: tuple[str, ...] = ()
        self._plan: list = []
        self._blank: dict[str, np.ndarray] = {}
        self._shapes: dict[str, tuple] = {}
        self._batch: list[dict] = []
        """Records taken since the last tick: appended to the writer together (one append
        per tick instead of one per message)."""
        self._shared = [(f.name, f.previous) for f in schema.fields if f.previous]
        """(field, field of the previous transition) pairs whose frames are sent once."""
        self._previous: dict[str, tuple] = {}
        """Robot -> (seq, episode_id, step, {field: frames}) of its last accepted transition,
        for the fields named by ``_shared``."""
        if self.path.exists() and any(self.path.iterdir()):
            self._open()

    # -- store ---------------------------------------------------------------------------
    def _open(self) -> None:
        """Reopen (and recover) the store; everything it needs is in the marker and the
        metadata. StoreError if the folder is not a store."""
        self.writer = ReplayWriter.open(self.path, self.writer_config)
        try:
            have = self.writer.schema.by_name
            missing = [f.store_name() for f in self.schema.fields
                       if not f.per_camera and f.store_name() not in have]
            if missing:
                raise ValueError(f'{self.path} has no fields {missing} of the transition '
                                 'schema (a store made before they were added): give a new '
                                 'store_path')
            meta = self.writer.metadata
            if 'space' in meta:
                self.space = SharedSpace.from_json(meta['space'])
                for rid, desc in meta.get('robots', {}).items():
                    self.embodiment[rid] = self.space.index(desc)
            self._prepare()
        except ValueError:
            self.writer.close(commit=False)  # releases the lock; nothing was written
            raise

    def _create(self) -> None:
        descriptions = {rid: self.descriptions[rid] for rid in self.robot_ids}
        fields, self.space = store_schema(descriptions, self.schema)  # ValueError: why not
        self.writer = ReplayWriter.create(
            self.path, fields, {'created_unix': time.time(), **self.metadata,
                                'robots': descriptions, 'space': self.space.to_json()},
            config=self.writer_config)
        self.embodiment = {rid: self.space.index(d) for rid, d in descriptions.items()}
        self._prepare()

    def _prepare(self) -> None:
        """The store's cameras, a black frame for each camera field, and per schema field
        its store name(s) and dtype (worked out once, not per message)."""
        fields = self.writer.schema.by_name
        self._cameras = self.schema.store_cameras(fields)
        self._plan = [(f, [(c, f.store_name(c)) for c in self._cameras] if f.per_camera
                       else f.store_name(), np.dtype(f.dtype)) for f in self.schema.fields]
        self._blank = {}
        self._shapes = {name: spec.shape for name, spec in fields.items()}
        for f in self.schema.fields:
            if f.per_camera:
                for cam in self._cameras:
                    spec = fields.get(f.store_name(cam))
                    if spec is not None:
                        self._blank[f.store_name(cam)] = np.zeros(spec.shape, spec.dtype)

    # -- inputs --------------------------------------------------------------------------
    def on_description(self, desc: dict) -> tuple[bool, str]:
        """Take a robot's description; returns (store created now, error message or '').
        Creating the store takes the transitions that arrived early; ValueError if the
        robots cannot share one store (the message names the difference)."""
        rid = desc['robot_id']
        self.descriptions[rid] = desc
        error = ''
        if self.writer is not None and self.space is not None:
            try:  # a store that exists: the robot must still be what the store was made for
                self.embodiment[rid] = self.space.index(desc)
            except ValueError as e:
                self.embodiment.pop(rid, None)
                error = (f'{e}; its transitions are not stored (start a new store_path for '
                         'the new robot set)')
        if self.writer is None and set(self.robot_ids) <= set(self.descriptions):
            self._create()
            early, self._early = self._early, []
            for values in early:
                self.on_transition(values)
            return True, error
        return False, error

    def on_transition(self, values: Mapping[str, Any]) -> Outcome:
        """One decoded transition (``TransitionSchema.from_message``: values by field name
        plus ``robot_id`` and ``seq``)."""
        if self.writer is None:
            self._early.append(dict(values))  # not acknowledged; kept until the store exists
            self.counters[EARLY] += 1
            return Outcome(EARLY)
        robot, seq = values[ROBOT_ID], int(values[SEQ])
        expected = self._next_seq(robot)
        if seq != expected:
            status = DUPLICATE if seq < expected else OUT_OF_ORDER
            self.counters[status] += 1
            return Outcome(status)
        try:
            if values.get(IMAGES_FROM_PREVIOUS):
                values = self._with_previous(values, robot, seq)
            self._batch.append(self.record(values))
        except (ValueError, KeyError) as e:
            return self.reject(robot, seq, str(e))
        self._accepted[robot] = seq
        self._appended += 1
        self._arrivals.append((self._appended, time.monotonic()))
        if self._shared:
            self._previous[robot] = (seq, values.get(EPISODE_ID), values.get('step'),
                                     {prev: values.get(prev) for _, prev in self._shared})
        self.counters[STORED] += 1
        return Outcome(STORED)

    def _with_previous(self, values: Mapping[str, Any], robot: str, seq: int) -> dict:
        """``values`` with the frames left out of the message taken from the robot's previous
        transition; ValueError if that is not seq - 1 of the same episode at step - 1."""
        held = self._previous.get(robot)
        if held is None or held[0] != seq - 1:
            held = self._stored_previous(robot, seq - 1)
        _, episode, step, frames = held
        if episode is not None and (int(episode) != int(values.get(EPISODE_ID, -1))
                                    or int(step) + 1 != int(values.get('step', -1))):
            raise ValueError(
                f'{IMAGES_FROM_PREVIOUS} is set but transition #{seq - 1} is episode '
                f'{episode} step {step}, not step {values.get("step")} - 1 of episode '
                f'{values.get(EPISODE_ID)}: send the images of a step that does not follow '
                'its predecessor')
        out = dict(values)
        for name, prev in self._shared:
            out[name] = frames[prev]
        return out

    def _stored_previous(self, robot: str, seq: int) -> tuple:
        """(seq, episode_id, step, {field: frames}) of robot's transition ``seq`` read back
        from the store (after a reopen the core holds no frames yet)."""
        from realrl_replay.reader import ReplayReader
        from realrl_replay.schema import SEQ as STORE_SEQ
        if self.writer.committed_seq(robot) < seq or seq < 0:
            raise ValueError(f'{IMAGES_FROM_PREVIOUS} is set but transition #{seq} of {robot} '
                             'is not in the store: send its images')
        reader = ReplayReader(self.path, decoded_cache_bytes=8 << 20)
        code = list(reader.robot_names).index(robot)
        names = {f.store_name(cam): (prev, cam) for _, prev in self._shared
                 for f in [self.schema.by_name[prev]] for cam in self._cameras}
        step_name = self.schema.by_name['step'].store_name()
        hi = reader.count
        while hi > reader.first:
            lo = max(reader.first, hi - 4096)
            rows = reader.read_range(lo, hi, [ROBOT_ID, STORE_SEQ])
            hit = np.flatnonzero((rows[ROBOT_ID] == code) & (rows[STORE_SEQ] == seq))
            if hit.size:
                row = lo + int(hit[-1])
                got = reader.read([row], [*names, EPISODE_ID, step_name])
                frames: dict[str, dict] = {prev: {} for _, prev in self._shared}
                for store, (prev, cam) in names.items():
                    frames[prev][cam] = got[store][0]
                return seq, int(got[EPISODE_ID][0]), int(got[step_name][0]), frames
            hi = lo
        raise ValueError(f'{IMAGES_FROM_PREVIOUS} is set but transition #{seq} of {robot} is '
                         'no longer in the store: send its images')

    def reject(self, robot: str, seq: int, why: str) -> Outcome:
        """Count a transition that is not stored (also one the node could not decode)."""
        self.counters[REJECTED] += 1
        return Outcome(REJECTED, f'transition {robot}#{seq}: {why}')

    def _next_seq(self, robot: str) -> int:
        """The only seq of robot the store takes next: its sequence has no gaps."""
        last = self._accepted.get(robot)
        if last is None:
            last = max(self.writer.committed_seq(robot), 0)
        return last + 1

    def record(self, values: Mapping[str, Any]) -> dict:
        """The store row of a transition: schema fields under their store names, padded into
        the shared space, black frames for cameras the robot lacks."""
        robot = values[ROBOT_ID]
        rec: dict[str, Any] = {ROBOT_ID: robot, SEQ: int(values[SEQ])}
        e = None
        if self.space is not None:
            e = self.embodiment.get(robot)
            if e is None:
                raise ValueError(f'robot {robot} has no embodiment in this store (its '
                                 'description is missing or does not fit)')
            rec[EMBODIMENT] = np.int16(e)
        for f, name, dtype in self._plan:
            value = values.get(f.name)
            if f.per_camera:
                frames = dict(value or {})
                for cam, store in name:
                    rec[store] = frames.pop(cam) if cam in frames else self._blank[store]
                if frames:
                    raise ValueError(f'field {f.name!r}: cameras {sorted(frames)} are not in '
                                     f'this store (it has {list(self._cameras)})')
                continue
            if value is None:  # the sender left it out: its default, in the store's shape
                rec[name] = f.fill(self.writer.schema.by_name[name].shape)
                continue
            if f.text and isinstance(value, str):  # a driver's own value (no message)
                value = encode_text(value, int(f.shape[0]), f.name)
            value = np.asarray(value, dtype)
            if f.finite and not np.isfinite(value).all():
                raise ValueError(f'{f.name} is not finite')
            if e is not None and f.shape and f.shape[-1] in (STATE_DIM, ACTION_DIM):
                value = self._pad(f.shape, e, value)
            rec[name] = value
        for name, value in rec.items():
            shape = self._shapes.get(name)
            if shape is not None and np.shape(value) != shape:
                raise ValueError(f'{name} has shape {np.shape(value)}; the store holds {shape}')
        return rec

    def _flush(self) -> None:
        """Append the records taken since the last flush (each was checked by ``record``)."""
        if self._batch:
            batch, self._batch = self._batch, []
            self.writer.append(batch)

    def _pad(self, shape: tuple, e: int, value: np.ndarray) -> np.ndarray:
        """Rows of the robot's own width -> rows of the shared width (last axis)."""
        space = self.space
        pad = space.pad_state if shape[-1] == STATE_DIM else space.pad_action
        if len(shape) == 1:
            return pad(e, value)
        own = space.embodiments[e]
        width = own.state_dim if shape[-1] == STATE_DIM else own.action_dim
        if value.size % max(width, 1):
            raise ValueError(f'{value.size} values are not rows of {width}')
        rows = value.reshape(-1, width)
        return np.stack([pad(e, r) for r in rows]).reshape(*shape[:-1], -1)

    # -- commits and acks ----------------------------------------------------------------
    def tick(self) -> list[Ack]:
        """Per commit timer tick: acks for the commit that finished since the last tick,
        then the next commit is started (pipelined). A failed commit raises here."""
        if self.writer is None:
            return []
        self._flush()
        acks = []
        if self._inflight is not None:
            if not self._inflight.done():
                return []
            self._inflight.result()
            self._inflight = None
            acks = self._new_acks()
        pending = self.writer.pending
        if pending and (pending >= self.writer.rows_to_boundary or (
                self._arrivals and time.monotonic() - self._arrivals[0][1] >= self.max_wait_s)):
            self._inflight = self.writer.commit_async(boundary=True)
            taken = self._appended - self.writer.pending
            while self._arrivals and self._arrivals[0][0] <= taken:
                self._arrivals.popleft()
        return acks

    def _new_acks(self) -> list[Ack]:
        info = self.writer.commit_info()
        acks = []
        for robot, seq in info.seqs.items():
            if seq != self._acked.get(robot) and seq >= 0:
                self._acked[robot] = seq
                acks.append(Ack(robot, seq, info.count))
        return acks

    def all_acks(self) -> list[Ack]:
        """Every robot's durable seq again (a lost ack costs a re-send, never a transition)."""
        if self.writer is None:
            return []
        info = self.writer.commit_info()
        return [Ack(robot, seq, info.count) for robot, seq in info.seqs.items() if seq >= 0]

    def sender_state(self, robot: str) -> tuple[SenderState, list[Ack]]:
        """Commit what is pending, then say where ``robot`` continues (and the new acks)."""
        if self.writer is None:
            return SenderState(False, 0, 0, 0), []
        self._flush()
        self.writer.commit()  # waits for the commit in flight, then commits the rest
        self._arrivals.clear()
        acks = self._new_acks()
        seq = self.writer.committed_seq(robot)
        return SenderState(seq >= 0, max(seq, 0),
                           max(self.writer.committed_episode(robot), 0),
                           self.writer.count), acks

    def close(self) -> None:
        if self.writer is not None:
            self._flush()
            self.writer.close()
