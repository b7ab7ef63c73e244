"""The learner's loop, free of ROS: sample the replay store, update the algorithm, version,
checkpoint.

The algorithm is the plug-in ``algorithm.type`` names (``realrl_learner.algorithms``; 'sac'
by default). The learner never waits for robots and robots never wait for it: it trains on
whatever the store has committed, paced so that it makes at most ``updates_per_step``
updates per stored transition (the UTD ratio), and hands out a new weights version every
``publish_every_updates`` updates or ``publish_every_s``. That is ``mode: async``; with
``mode: sync`` the robots wait after each episode (the drivers' ``sync_weights``) and the
trainer trains only then: when the store holds a newly finished episode, it makes the updates
the UTD ratio allows for the rows up to the newest episode end, and a new version is handed
out (even with no update yet, before learning_starts, so the robots go on). Checkpoints
hold everything an exact resume needs: the algorithm's state, the version, torch's and the
samplers' random generators, so a resumed learner continues the version sequence and draws
what it would have drawn.

An image actor (``actor.type: cnn``) makes the trainer sample its cameras' frames
(obs/image_<camera>, next_obs/image_<camera>) into the batch beside the state; with
``actor.encoder.frame_stack`` k the sampler stacks each camera's last k frames of the
row's episode ([B, H, W, 3k], ``realrl_replay.frame_stack``). Every key an
algorithm's ``batch_keys`` names is supplied (``BATCH_KEY_FIELDS``): a vision-language chunk
actor ('vla_tiny', 'flow' under bc or hg_dagger) gets 'image' (its camera's frames),
'instruction' (the store's UTF-8 column) and 'action_chunk' (each row's action and the H-1
its robot took next in the episode, read from the store by the sampler).

Robots of several kinds train one actor and one pair of critics over the store's shared
space (``realrl_common.embodiment``): the actor's input is the padded state plus the
embodiment one-hot, actions are scaled with each row's own robot's bounds, and the action
values a robot lacks are masked. The space travels in every weights blob and checkpoint.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from realrl_common.config import check
from realrl_common.embodiment import SharedSpace
from realrl_common.transition import EMBODIMENT
from realrl_learner.algorithms import (
    ObservationSpec,
    actor_takes_images,
    actor_uses_images,
    algorithm_config,
    build_algorithm,
)
from realrl_learner.algorithms.common import chunk_length
from realrl_learner.data_parallel import DataParallel, Ranks, join, rank_device, rank_seed
from realrl_learner.publish_thread import copy_weights, cpu_shadow
from realrl_learner.sac import MASK_KEY
from realrl_policy.models import build_actor
from realrl_policy.weights_blob import pack_actor, unpack_actor
from realrl_replay.layout import IDENTITY_FILE, fsync_dir
from realrl_replay.mixer import MixedSampler, check_compatible, open_sources
from realrl_replay.reader import EPISODE, ReplayReader
from realrl_replay.sampler import Sampler
from realrl_replay.sampler_config import SamplerConfig
from realrl_replay.schema import ROBOT_ID

MIN_CACHE_BLOCKS = 32
"""Fewest blocks of sampled rows a store's cache is given (the sampler needs its prefetch
blocks + 2; more keeps older rows in rotation)."""
FIELDS = ('obs/state', 'action', 'reward', 'next_obs/state', 'terminated')
EXTRA_FIELDS = ('intervention', 'instruction')
"""Store fields a batch carries only for algorithms whose batch_keys name them."""
BATCH_KEY_FIELDS = ('obs', 'action', 'reward', 'next_obs', 'terminated', 'image',
                    'action_chunk') + EXTRA_FIELDS
"""Batch keys the trainer can supply (what they hold: ``algorithms.common.BATCH_FIELDS``)."""


MODES = ('async', 'sync')


@dataclass(frozen=True)
class TrainerConfig:
    """How the trainer samples, publishes weights and writes checkpoints."""

    mode: str = 'async'
    """'async': train while the robots collect, nothing waits; 'sync': the robots wait after
    each episode while the learner trains on it. Set by the graph's top-level mode, which also
    sets every driver's sync_weights (realrl_bringup.graph_mode)."""

    algorithm: Any = field(default_factory=lambda: {'type': 'sac'})
    """The algorithm: ``type`` (a name registered under 'realrl.algorithms': sac, rlpd, ...)
    and its hyperparameters (batch size, learning rates, UTD ratio, learning_starts, actor
    ...), e.g. {type: rlpd, num_critics: 10}. Becomes the algorithm's config dataclass."""
    sac: Any = None
    """SAC's hyperparameters under their name from before plug-ins: the same as
    ``algorithm: {type: sac, ...}`` (existing configs and ``--set learner.sac.*`` keep
    working). After validation it is the algorithm's config when that is SAC, else None."""
    publish_every_s: float = 2.0
    """A new weights version is published this often once learning started (unless
    publish_every_updates is set)."""
    publish_every_updates: int = 0
    """A new weights version every this many updates (the RLinf-USER paper used 32; it
    found 1 and 8 unstable); 0: by publish_every_s."""
    checkpoint_every_s: float = 30.0
    """A checkpoint is written this often (and when the learner stops)."""
    keep_checkpoints: int = 3
    """Older numbered checkpoints beyond this many are deleted (latest.pt is kept)."""
    window: int = 0
    """Sample only the most recent N transitions (0: all of them)."""
    cache_bytes: int = 16 << 20
    """Memory of the sampler's cache of decoded rows (the newest are always in it). Each
    batch costs time in proportion to the rows the cache holds: 16 MiB keeps ~90k state
    transitions. Camera rows are larger: where this holds fewer than MIN_CACHE_BLOCKS of a
    store's blocks of the sampled fields, the trainer raises it to that (per store)."""
    refresh_every_s: float = 0.25
    """How often the store's commit marker is re-read for new transitions."""
    seed: int = 0
    """Seed of the networks and the sampler."""
    torch_threads: int = 1
    """CPU threads torch may use (leave cores for the robots' control loops)."""
    demo_stores: tuple[str, ...] = ()
    """Stores of demonstrations (``python -m realrl_replay.import_demos``) or earlier runs, sampled
    read-only beside this run's store. Their robots' spaces must be this run's."""
    demo_ratio: float = 0.5
    """Share of every batch drawn from demo_stores (0.5 is RLPD's symmetric sampling);
    unused without demo_stores."""
    intervention_ratio: float = 0.0
    """Share of every batch drawn from the rows of this run where a person took over (their
    intervention flag), as HG-DAgger and HIL-SERL weight them; 0: such rows are sampled like
    any other. A source with no rows yet gives its share to the others."""
    ranks: int = 1
    """Processes the learner trains on, data-parallel (one per GPU of the host, or on the CPU
    with gloo; ``realrl`` starts them through torchrun): each samples batch_size / ranks rows
    of every batch, gradients are averaged, rank 0 publishes and checkpoints
    (``realrl_learner.data_parallel``); an algorithm's GPU ``device`` becomes each rank's
    own (LOCAL_RANK). Needs mode async."""

    def __post_init__(self):
        algorithm = algorithm_config(self.algorithm)
        if self.sac is not None:
            sac = algorithm_config(self.sac if is_dataclass(self.sac)
                                   else {'type': 'sac', **self.sac}, key='sac')
            default = isinstance(self.algorithm, Mapping) and dict(self.algorithm) in (
                {}, {'type': 'sac'})
            check(sac.type == 'sac' and (default or algorithm == sac),
                  "give the algorithm's hyperparameters under 'algorithm' (with its type) or "
                  "SAC's under 'sac', not both")
            algorithm = sac
        object.__setattr__(self, 'algorithm', algorithm)
        object.__setattr__(self, 'sac', algorithm if algorithm.type == 'sac' else None)
        check(self.mode in MODES, f'mode must be one of {list(MODES)} (async: robots never '
                                  f'wait for training; sync: they wait after each episode), '
                                  f'got {self.mode!r}')
        check(self.publish_every_s > 0, f'publish_every_s must be > 0, got {self.publish_every_s}')
        check(self.publish_every_updates >= 0,
              f'publish_every_updates must be >= 0 (0: by time), got {self.publish_every_updates}')
        check(self.checkpoint_every_s > 0,
              f'checkpoint_every_s must be > 0, got {self.checkpoint_every_s}')
        check(self.keep_checkpoints >= 1,
              f'keep_checkpoints must be >= 1, got {self.keep_checkpoints}')
        check(self.window >= 0, f'window must be >= 0 (0: all), got {self.window}')
        check(self.cache_bytes >= 1 << 20, f'cache_bytes must be >= 1 MiB, got {self.cache_bytes}')
        check(self.torch_threads >= 1, f'torch_threads must be >= 1, got {self.torch_threads}')
        check(isinstance(self.ranks, int) and self.ranks >= 1,
              f'ranks must be an integer >= 1 (processes, one per GPU), got {self.ranks!r}')
        check(self.ranks == 1 or self.mode == 'async',
              f'ranks: {self.ranks} trains data-parallel in mode async only; set mode: async '
              'or ranks: 1')
        check(self.algorithm.batch_size % self.ranks == 0,
              f'algorithm.batch_size ({self.algorithm.batch_size}) must be a multiple of ranks '
              f'({self.ranks}): each rank samples an equal share of every batch')
        for name in ('demo_ratio', 'intervention_ratio'):
            value = getattr(self, name)
            check(0.0 <= value <= 1.0, f'{name} must be in [0, 1], got {value}')
        check(self.demo_share + self.intervention_ratio <= 1.0,
              f'demo_ratio ({self.demo_ratio}) + intervention_ratio ({self.intervention_ratio}) '
              f'must be <= 1: the rest of each batch is online data')
        for store in self.demo_stores:  # earlier data: it must be there before the run starts
            check(Path(store, IDENTITY_FILE).is_file(),
                  f'demo_stores: {store!r} is not a replay store (no {IDENTITY_FILE}); give '
                  'folders made by python -m realrl_replay.import_demos or earlier runs\' replay/')

    @property
    def demo_share(self) -> float:
        """demo_ratio where there are demo_stores, else 0."""
        return self.demo_ratio if self.demo_stores else 0.0


class Trainer:
    """An algorithm on a replay store: samples batches, updates, publishes versioned
    weights, writes checkpoints and metrics."""

    def __init__(self, cfg: TrainerConfig, reader, checkpoint_dir: str | Path,
                 metrics_path: str | Path | None = None, ranks: Ranks | None = None):
        self.cfg = cfg
        self.reader = reader
        self.ranks = ranks
        if cfg.ranks > 1 and (ranks is None or ranks.world != cfg.ranks):
            raise ValueError(f'ranks: {cfg.ranks}, but this process is one of '
                             f'{ranks.world if ranks else 1}: the learner\'s ranks are started by '
                             f'torchrun --nproc-per-node {cfg.ranks} (realrl does it)')
        torch.set_num_threads(cfg.torch_threads)
        robots = reader.metadata.get('robots', {})
        if not robots:
            raise ValueError(f'replay store {reader.path} has no robot descriptions in its '
                             'metadata; it was not written by the replay node')
        space = reader.metadata.get('space')
        if space is not None:
            self.space = SharedSpace.from_json(space)
        else:  # a store from before shared spaces: one shape, the first robot's
            first_id = next(iter(robots))
            self.space = SharedSpace.from_descriptions({first_id: robots[first_id]})
        stored = reader.schema.by_name['obs/state'].shape[0]
        if stored != self.space.state_dim:
            raise ValueError(f'replay store {reader.path} holds states of {stored} values, its '
                             f'robots\' shared space has {self.space.state_dim}')
        self.obs_dim, self.act_dim = self.space.obs_dim, self.space.action_dim
        # one embodiment: every row's is 0, so it is not sampled (demonstration stores, made
        # by import_demos, have no such field)
        self._per_row = (EMBODIMENT in reader.schema.by_name
                         and len(self.space.embodiments) > 1)
        self._masked = any(e.action_dim < self.act_dim for e in self.space.embodiments)
        self.obs_spec = observation_spec(cfg.algorithm, reader, self.obs_dim)
        algorithm_cfg, seed = shard(cfg, ranks)
        self.algorithm = build_algorithm(self.obs_spec, self.act_dim, algorithm_cfg, cfg.seed)
        self.parallel: DataParallel | None = None
        if ranks is not None:  # same weights on every rank, then each its own random stream
            device = str(getattr(algorithm_cfg, 'device', 'cpu'))
            join(ranks, device.startswith('cuda'))
            self.parallel = DataParallel(self.algorithm, ranks, device)
            self.parallel.broadcast_from_leader()
            if ranks.rank:  # rank 0 draws what a learner without ranks draws
                torch.manual_seed(seed)
        keys = tuple(getattr(self.algorithm, 'batch_keys', ())) or (
            'obs', 'action', 'reward', 'next_obs', 'terminated')
        unknown = [k for k in keys if k not in BATCH_KEY_FIELDS]
        if unknown:
            raise ValueError(f'algorithm.type {cfg.algorithm.type!r} reads batch keys {unknown} '
                             f'the trainer cannot supply; it supplies {list(BATCH_KEY_FIELDS)}')
        # Store fields an algorithm reads besides the transition's core ('intervention').
        self._extra = tuple(k for k in keys if k in EXTRA_FIELDS)
        for key in self._extra:
            if key not in reader.schema.by_name:
                raise ValueError(f'algorithm.type {cfg.algorithm.type!r} reads {key!r}, which '
                                 f'replay store {reader.path} does not hold')
        self._image = 'image' in keys
        self._next_images = 'next_obs' in keys
        self._chunk = max(1, chunk_length(self.algorithm.actor)) if 'action_chunk' in keys else 0
        self.online, self.sampler = make_samplers(
            cfg, reader, self._per_row, self.obs_spec.cameras, self._extra,
            next_images=self._next_images, action_chunk=self._chunk,
            frame_stack=frame_stack_of(cfg.algorithm.actor),
            batch_size=algorithm_cfg.batch_size, seed=seed)
        self.version = 0
        self._published_at = 0
        self._sent_whole = False  # the first version out is whole (next_weights)
        self._shadow = None  # the CPU copy of the actor snapshot_weights fills
        self.checkpoint_dir = Path(checkpoint_dir)
        self.metrics_path = Path(metrics_path) if metrics_path else None
        self.started = time.monotonic() - _last_time(self.metrics_path)
        self._last_refresh = 0.0
        self._last_publish = time.monotonic()
        self._last_checkpoint = time.monotonic()
        self.last_metrics: dict[str, float] = {}
        self._scanned = self._finished = self._round_rows = 0  # sync mode's episode ends
        self.sync_rounds = 0
        self.train_s = 0.0
        """Seconds spent in sync rounds (the robots' wait for training)."""

    @property
    def sac(self):
        """The algorithm, under its name from when SAC was the only one."""
        return self.algorithm

    def close(self) -> None:
        self.sampler.close()  # a MixedSampler closes its sources, the online one among them
        if self.parallel is not None:
            self.parallel.close()

    # -- pacing -------------------------------------------------------------------------
    def allowed_updates(self) -> int:
        """Updates the UTD ratio allows for what the store holds now."""
        grown = self.online.count - self.cfg.algorithm.learning_starts
        return int(grown * self.cfg.algorithm.updates_per_step) if grown > 0 else 0

    def step(self, now: float | None = None) -> bool:
        """One update if the store and the pacing allow it; returns whether it trained."""
        now = time.monotonic() if now is None else now
        if now - self._last_refresh >= self.cfg.refresh_every_s:
            self.sampler.refresh()
            self._last_refresh = now
        if self.online.count == 0 or self.algorithm.updates >= self.allowed_updates():
            return False
        batch = self.batch(self.sampler.sample())
        self.last_metrics = self.algorithm.update(batch)
        return True

    def ranked_round(self, now: float, stop: bool = False, can_publish: bool = True
                     ) -> tuple[bool, bool]:
        """With ranks, one round of them all: rank 0 decides (an update if the pacing allows
        it, a checkpoint if due, the stop; its ``stop``) and every rank does it together
        (its own share of the batch, the gradient averaged). Returns (publish, stop) as rank
        0 decided them: publish when due and rank 0's ``can_publish`` (its publisher is
        free); only rank 0 publishes."""
        values = [0, 0, 0, 0, int(stop)]
        if self.ranks.leader:
            if now - self._last_refresh >= self.cfg.refresh_every_s:
                self.sampler.refresh()
                self._last_refresh = now
            train = (not stop and self.online.count > 0
                     and self.algorithm.updates < self.allowed_updates())
            checkpoint = self.checkpoint_due(now) or (stop and self.algorithm.updates > 0)
            values = [int(train), self.online.count,
                      int(can_publish and self.publish_due(now)), int(checkpoint), int(stop)]
        train, count, publish, checkpoint, stop = self.parallel.agree(values)
        if train:
            while self.online.count < count:  # rank 0 saw rows this rank has not yet
                self.sampler.refresh()
                time.sleep(0.001)
            self.last_metrics = self.algorithm.update(self.batch(self.sampler.sample()))
        if checkpoint:
            self.save_checkpoint(now)
        if not (train or checkpoint or publish or stop):
            time.sleep(0.01)  # nothing to train on yet: ask again soon
        return bool(publish), bool(stop)

    def finished_rows(self) -> int:
        """Rows of the store up to its newest episode end (a terminated or truncated row), as
        of the sampler's last refresh. Several robots' rows interleave: a robot's unfinished
        episode may have rows below another's end."""
        count = self.online.count
        if count > self._scanned:
            start = max(self._scanned, self.reader.first)
            rows = self.reader.read_range(start, count, ['terminated', 'truncated'],
                                          self.reader.snapshot())
            ends = np.flatnonzero(np.asarray(rows['terminated'], bool)
                                  | np.asarray(rows['truncated'], bool))
            if ends.size:
                self._finished = start + int(ends[-1]) + 1
            self._scanned = count
        return self._finished

    def sync_round(self, stop=lambda: False) -> bool:
        """In mode sync: if an episode ended in the store since the last round (its robot waits),
        the updates the UTD ratio allows for the rows up to it, then True: hand out a new
        version. ``stop()`` cuts a round short (shutdown)."""
        self.sampler.refresh()
        self._last_refresh = time.monotonic()
        finished = self.finished_rows()
        if finished <= self._round_rows:
            return False
        begun = time.monotonic()
        self._round_rows = finished
        algo = self.cfg.algorithm
        allowed = int(max(0, finished - algo.learning_starts) * algo.updates_per_step)
        while self.algorithm.updates < allowed and not stop():
            self.last_metrics = self.algorithm.update(self.batch(self.sampler.sample()))
        self.sync_rounds += 1
        self.train_s += time.monotonic() - begun
        return True

    def batch(self, rows: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Sampled rows -> the algorithm's batch: actor inputs (with the cameras' frames for
        an image actor), actions in [-1, 1] (and their mask)."""
        n = len(rows['reward'])
        e = (rows[EMBODIMENT].astype(np.int64) if self._per_row else np.zeros(n, np.int64))
        space = self.space
        out = {
            'obs': torch.as_tensor(space.actor_obs(rows['obs/state'], e)),
            'action': torch.as_tensor(space.to_unit(rows['action'], e), dtype=torch.float32),
            'reward': torch.as_tensor(rows['reward'], dtype=torch.float32),
            'next_obs': torch.as_tensor(space.actor_obs(rows['next_obs/state'], e)),
            'terminated': torch.as_tensor(rows['terminated'], dtype=torch.float32),
        }
        if self.obs_spec.cameras:
            for side in ('obs', 'next_obs') if self._next_images else ('obs',):
                out[side] = {'state': out[side], **{
                    key: torch.as_tensor(rows[f'{side}/{key}'])
                    for key in self.obs_spec.image_keys}}
        if self._image:  # the chunk actor's one camera
            out['image'] = torch.as_tensor(rows[f'obs/{self.obs_spec.image_keys[0]}'])
        if self._chunk:
            out['action_chunk'] = torch.as_tensor(
                space.to_unit(rows['action_chunk'], e[:, None]), dtype=torch.float32)
        for key in self._extra:
            out[key] = (torch.as_tensor(rows[key]) if key == 'instruction'
                        else torch.as_tensor(rows[key], dtype=torch.float32))
        if self._masked:
            out[MASK_KEY] = torch.as_tensor(space.mask[e])
        return out

    def publish_due(self, now: float) -> bool:
        updates = self.algorithm.updates
        if self.cfg.publish_every_updates:
            return updates - self._published_at >= self.cfg.publish_every_updates
        return updates > 0 and now - self._last_publish >= self.cfg.publish_every_s

    def next_weights(self, now: float) -> tuple[int, bytes]:
        """A new version of the actor's weights: whole the first time, and after that only
        the part that trains when part of the actor is frozen (the policy keeps the rest)."""
        self.version += 1
        self._last_publish = now
        self._published_at = self.algorithm.updates
        partial = self._sent_whole and bool(getattr(self.algorithm, 'frozen', ()))  # bc's freeze
        self._sent_whole = True
        return self.version, pack_actor(self.algorithm.actor, self.space.to_json(), partial)

    def snapshot_weights(self, now: float) -> tuple[int, Any, bool]:
        """A new version as (version, a CPU copy of the actor, partial): the actor's weights
        copied between two steps into a shadow kept for it (after the first version only
        the part that trains). Packing and sending the copy (``pack_actor(copy, space,
        partial)``) can then run beside training (``publish_thread.PublishThread``)."""
        self.version += 1
        self._last_publish = now
        self._published_at = self.algorithm.updates
        partial = self._sent_whole and bool(getattr(self.algorithm, 'frozen', ()))
        self._sent_whole = True
        if self._shadow is None:
            self._shadow = cpu_shadow(self.algorithm.actor)
        copy_weights(self._shadow, self.algorithm.actor, trained_only=partial)
        return self.version, self._shadow, partial

    def current_weights(self) -> tuple[int, bytes]:
        return self.version, pack_actor(self.algorithm.actor, self.space.to_json())

    def metrics_record(self) -> dict:
        return {'time_s': round(time.monotonic() - self.started, 3),
                'updates': self.algorithm.updates, 'version': self.version,
                'stored': self.online.count, **self.last_metrics,
                **({'sync_rounds': self.sync_rounds, 'sync_train_s': round(self.train_s, 3)}
                   if self.cfg.mode == 'sync' else {})}

    def log_metrics(self) -> None:
        if self.metrics_path is None:
            return
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, 'a') as f:
            f.write(json.dumps(self.metrics_record()) + '\n')

    # -- checkpoints --------------------------------------------------------------------
    def checkpoint_due(self, now: float) -> bool:
        return (self.algorithm.updates > 0
                and now - self._last_checkpoint >= self.cfg.checkpoint_every_s)

    def save_checkpoint(self, now: float | None = None) -> Path | None:
        """Write a checkpoint (with ranks: every rank calls it together; rank 0 writes it,
        with every rank's random streams); its path (None on the other ranks)."""
        self._last_checkpoint = time.monotonic() if now is None else now
        rngs = self.rank_rngs()
        if self.ranks is not None and not self.ranks.leader:
            return None
        if not self.checkpoint_dir.is_dir():
            self.checkpoint_dir.mkdir(parents=True)
            fsync_dir(self.checkpoint_dir.parent)  # the new folder's name is durable
        path = self.checkpoint_dir / f'ckpt_{self.algorithm.updates:09d}.pt'
        state = self.state_dict()
        if rngs is not None:
            state['rank_rngs'] = json.dumps(rngs)
        tmp = path.with_suffix('.tmp')
        torch.save(state, tmp)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        latest = self.checkpoint_dir / 'latest.pt'
        tmp_link = self.checkpoint_dir / 'latest.tmp'
        tmp_link.unlink(missing_ok=True)
        os.link(path, tmp_link)
        os.replace(tmp_link, latest)
        fsync_dir(self.checkpoint_dir)  # both renames are durable before the next step
        for old in sorted(self.checkpoint_dir.glob('ckpt_*.pt'))[:-self.cfg.keep_checkpoints]:
            old.unlink()
        return path

    def state_dict(self) -> dict:
        """What a checkpoint holds: the algorithm's state, its type, the version and the
        publication counter, torch's RNG and the samplers' RNGs, the shared space and the
        actor's weights blob (``checkpoint_weights``)."""
        return {'algorithm_type': self.cfg.algorithm.type,
                'algorithm': self.algorithm.state_dict(), 'version': self.version,
                'published_at': self._published_at, 'torch_rng': torch.get_rng_state(),
                'sampler_rngs': json.dumps(sampler_rng_states(self.sampler)),
                'space': json.dumps(self.space.to_json()),
                'actor_blob': pack_actor(self.algorithm.actor, self.space.to_json())}

    def rank_rngs(self) -> list | None:
        """With ranks: each rank's random streams (torch's, the samplers'), in rank order,
        on rank 0 (a collective: every rank calls it); None without ranks."""
        if self.parallel is None:
            return None
        mine = {'torch_rng': torch.get_rng_state().tolist(),
                'sampler_rngs': sampler_rng_states(self.sampler)}
        return self.parallel.gather(mine)

    def load_latest(self) -> bool:
        """Restore the newest checkpoint, if any; returns whether one was loaded."""
        latest = self.checkpoint_dir / 'latest.pt'
        if not latest.exists():
            return False
        state = torch.load(latest, weights_only=True)
        kind = state.get('algorithm_type', 'sac')  # checkpoints from before plug-ins: SAC
        if kind != self.cfg.algorithm.type:
            raise ValueError(f'{latest} is a checkpoint of algorithm {kind!r}, the learner '
                             f'runs {self.cfg.algorithm.type!r}: set algorithm.type: {kind} '
                             'or start with an empty checkpoint_dir')
        if 'actor_blob' in state:
            saved = frame_stack_of(unpack_actor(bytes(state['actor_blob'])).cfg)
            mine = frame_stack_of(self.cfg.algorithm.actor)
            if saved != mine:
                raise ValueError(f'{latest} was trained with algorithm.actor.encoder.frame_stack '
                                 f'{saved}, the learner has {mine}: set it to {saved} or start '
                                 'with an empty checkpoint_dir')
        self.algorithm.load_state_dict(state['algorithm'] if 'algorithm' in state
                                       else state['sac'])
        self.version = int(state['version'])
        self._published_at = int(state.get('published_at', self.algorithm.updates))
        rank = self.ranks.rank if self.ranks is not None else 0
        if rank == 0:
            if 'torch_rng' in state:
                torch.set_rng_state(state['torch_rng'])
            if 'sampler_rngs' in state:
                set_sampler_rng_states(self.sampler, json.loads(state['sampler_rngs']))
        else:  # a rank the checkpoint's run had continues its streams; a new one keeps its seed
            saved = json.loads(state.get('rank_rngs', '[]'))
            if rank < len(saved):
                torch.set_rng_state(torch.tensor(saved[rank]['torch_rng'], dtype=torch.uint8))
                set_sampler_rng_states(self.sampler, saved[rank]['sampler_rngs'])
        return True


def observation_spec(algorithm_cfg, reader, state_dim: int) -> ObservationSpec:
    """The algorithm's observations: the actor's state vector, plus the cameras of an image
    actor (which must be in the store, with one frame size): the encoder's cameras of a
    'cnn', the one camera of a vision-language actor ('vla_tiny': its ``camera``, or the
    store's only camera when that is '')."""
    actor = algorithm_cfg.actor
    stored = {name: f.shape for name, f in reader.schema.by_name.items()}
    known = sorted(n[len('obs/image_'):] for n in stored if n.startswith('obs/image_'))
    if actor_uses_images(actor.type):
        cameras = actor.encoder.cameras
    elif actor_takes_images(actor.type):
        camera = getattr(actor, 'camera', '')
        if not camera and len(known) != 1:
            raise ValueError(f'algorithm.actor ({actor.type}) reads one camera and replay store '
                             f'{reader.path} has {known}: set algorithm.actor.camera')
        cameras = (camera or known[0],)
    else:
        return ObservationSpec(state_dim)
    missing = [c for c in cameras if f'obs/image_{c}' not in stored]
    if missing:
        raise ValueError(f'algorithm.actor.encoder.cameras {missing} are not in replay store '
                         f'{reader.path}, whose cameras are {known}')
    sizes = {tuple(stored[f'obs/image_{c}'][:2]) for c in cameras}
    if len(sizes) != 1:
        raise ValueError(f'the cameras {list(cameras)} have frames of several sizes {sizes}; '
                         'an encoder takes one size')
    return ObservationSpec(state_dim, tuple(cameras), sizes.pop())


def frame_stack_of(actor_cfg) -> int:
    """Frames per camera an image actor's encoder sees (``encoder.frame_stack``); 1 for
    actors that take no stacks (state actors, vision-language chunk actors)."""
    if not actor_uses_images(actor_cfg.type):
        return 1
    return int(getattr(getattr(actor_cfg, 'encoder', None), 'frame_stack', 1))


def _samplers(sampler, name: str = ''):
    """(path, Sampler) of every plain Sampler inside sampler (MixedSamplers nest)."""
    if hasattr(sampler, 'samplers'):
        for key, inner in sampler.samplers.items():
            yield from _samplers(inner, f'{name}/{key}')
    else:
        yield name or '/', sampler


def sampler_rng_states(sampler) -> dict:
    """The random generator state of every Sampler inside sampler, by path."""
    return {path: s._rng.bit_generator.state for path, s in _samplers(sampler)}


def set_sampler_rng_states(sampler, states: dict) -> None:
    """Restore sampler_rng_states output (paths that no longer exist are skipped)."""
    for path, s in _samplers(sampler):
        if path in states:
            s._rng.bit_generator.state = states[path]


def cache_bytes_for(requested: int, readers, fields: tuple[str, ...]) -> int:
    """The cache for sampling `fields` from the stores of `readers` through one config
    (whose cache_bytes a MixedSampler splits evenly between them): `requested`, raised so
    that every store's share holds MIN_CACHE_BLOCKS of its blocks. Camera rows are ~1,000
    times state rows, so the default fits state learning and grows for images."""
    need = 0
    for reader in readers:
        schema = reader.schema
        names = set(fields) | {n for n in (ROBOT_ID, EPISODE) if n in schema.by_name}
        specs = [schema.by_name[n] for n in names if n in schema.by_name]
        block = min(s.chunk_rows for s in specs)
        need = max(need, MIN_CACHE_BLOCKS * block * sum(s.row_bytes for s in specs))
    return max(requested, need * len(readers))


def make_samplers(cfg: TrainerConfig, reader, per_row: bool, cameras: tuple[str, ...] = (),
                  extra: tuple[str, ...] = (), next_images: bool = True, action_chunk: int = 0,
                  frame_stack: int = 1, batch_size: int | None = None,
                  seed: int | None = None):
    """(sampler of this run's rows, sampler of every batch): the same Sampler, or a
    MixedSampler of it with the demonstrations and the interventions by cfg's ratios.
    ``extra``: more store fields to sample (EXTRA_FIELDS an algorithm reads);
    ``next_images``: the cameras' next frames too; ``action_chunk``: H > 0 adds each row's
    'action_chunk' (every source reads its own store's following rows); ``frame_stack``:
    k > 1 stacks each camera's last k frames of the episode (each source its own rows);
    ``batch_size`` and ``seed``: a rank's share of the batch and its own seed (default:
    cfg's)."""
    batch_size = cfg.algorithm.batch_size if batch_size is None else batch_size
    seed = cfg.seed if seed is None else seed
    sides = ('obs', 'next_obs') if next_images else ('obs',)
    images = tuple(f'{side}/image_{cam}' for cam in cameras for side in sides)
    fields = FIELDS + images + tuple(extra) + ((EMBODIMENT,) if per_row else ())
    rows = batch_size * getattr(cfg.algorithm, 'grad_accumulation_steps', 1)
    base = SamplerConfig(batch_size=rows, cache_bytes=cfg.cache_bytes,
                         fields=fields, seed=seed, refresh_interval_s=cfg.refresh_every_s,
                         action_chunk=action_chunk, frame_stack=frame_stack)
    online = Sampler(reader, replace(base, window=cfg.window or None,
                                     cache_bytes=cache_bytes_for(cfg.cache_bytes, [reader],
                                                                 fields)))
    if not cfg.demo_stores and cfg.intervention_ratio == 0:
        return online, online
    samplers, ratios = {'online': online}, {}
    try:
        if cfg.intervention_ratio > 0:
            if 'intervention' not in reader.schema.by_name:
                raise ValueError(f'intervention_ratio > 0, but replay store {reader.path} has no '
                                 "'intervention' field; set intervention_ratio: 0")
            samplers['interventions'] = Sampler(reader, replace(
                base, window=cfg.window or None, seed=seed + 1,
                where=('intervention', (True,))))
            ratios['interventions'] = cfg.intervention_ratio
        if cfg.demo_stores:  # each opened once: its reader sizes the cache and is sampled
            readers = [ReplayReader(p) for p in cfg.demo_stores]
            demos = open_sources(readers, replace(
                base, seed=seed + 2,
                cache_bytes=cache_bytes_for(cfg.cache_bytes, readers, fields)))
            samplers['demos'] = demos
            ratios['demos'] = cfg.demo_ratio
            check_compatible({'this run': reader, **{
                n: s.reader for n, s in demos.samplers.items()}}, fields)
    except BaseException:
        for sampler in samplers.values():
            sampler.close()
        raise
    ratios['online'] = 1.0 - sum(ratios.values())
    return online, MixedSampler(samplers, ratios, rows)


def shard(cfg: TrainerConfig, ranks: Ranks | None):
    """(this rank's algorithm config, its seed): batch_size / ranks rows per batch on the
    rank's own device; cfg's own without ranks."""
    if ranks is None:
        return cfg.algorithm, cfg.seed
    changes = {'batch_size': cfg.algorithm.batch_size // ranks.world}
    if hasattr(cfg.algorithm, 'device'):
        changes['device'] = rank_device(cfg.algorithm.device, ranks)
    return replace(cfg.algorithm, **changes), rank_seed(cfg.seed, ranks.rank)


def checkpoint_weights(checkpoint_dir: str | Path, algorithm_cfg) -> tuple[int, bytes] | None:
    """The actor weights and version of the newest checkpoint, without the replay store:
    a resumed learner hands them out at once, so policies do not start from scratch."""
    latest = Path(checkpoint_dir) / 'latest.pt'
    if not latest.exists():
        return None
    state = torch.load(latest, weights_only=True)
    if 'actor_blob' in state:
        return int(state['version']), bytes(state['actor_blob'])
    sac = state['sac']  # a checkpoint from before plug-ins
    actor = build_actor(algorithm_cfg.actor, int(sac['obs_dim']), int(sac['act_dim']))
    actor.load_state_dict(sac['actor'])
    space = json.loads(state['space']) if 'space' in state else None
    return int(state['version']), pack_actor(actor, space)


def _last_time(metrics_path: Path | None) -> float:
    """time_s of the last metrics line, so a restarted learner continues the time axis."""
    if metrics_path is None or not metrics_path.exists():
        return 0.0
    for line in reversed(metrics_path.read_text().splitlines()):
        try:
            return float(json.loads(line)['time_s'])
        except (ValueError, KeyError):
            continue
    return 0.0
