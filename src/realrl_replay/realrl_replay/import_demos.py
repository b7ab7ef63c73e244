"""Import demonstrations into a new store marked ``source: 'demo'``.

Inputs (detected from the path, or named with ``--format``):

- ``robomimic``: an HDF5 file in robomimic's layout, ``data/demo_<N>/{obs/<key>, actions,
  rewards, dones}`` (``next_obs/<key>`` used when present). Episodes are taken in the order of
  N; ``data.attrs['env_args']`` travels into the metadata.
- ``npz``: a recorded teleop session as a folder of ``*.npz`` files, one per episode, in name
  order, each holding the same arrays as a robomimic demo under the same names
  (``obs/<key>``, optional ``next_obs/<key>``, ``actions``, ``rewards``, ``dones``), plus an
  optional ``session.json`` beside them: ``{"robot_description": {...}, ...}``, kept in the
  metadata.
- ``lerobot``: a LeRobotDataset v3.0 folder (``meta/info.json``, Parquet and MP4 files;
  ``import_lerobot``): ``observation.state`` -> obs 'state', ``observation.images.<cam>``
  -> camera <cam>, ``action``, ``next.reward``, ``next.done``; the episode's task becomes its
  ``instruction``, the dataset's fps its control_hz.
- ``store``: a realrl store (e.g. the replay node recording a teleop session); its rows are
  copied in order (optionally only some robots, or only rows with ``--where FIELD=VALUE``)
  with the source store's metadata under ``origin``.

Mapping of robomimic / npz arrays to the replay node's fields, so that a demo store mixes
with online stores (MixedSampler, open_sources): low-dimensional ``obs/<key>`` arrays are
concatenated, in ``state_keys`` order (default: sorted), into ``obs/state`` (float32; the
slices are in the description's ``state_layout``); (H, W, 3) uint8 arrays become
``obs/image_<camera>`` (camera = key without a trailing ``_image``); ``next_obs`` likewise
(without a ``next_obs`` group: the next step's obs, and at the last step the last obs);
``actions`` -> ``action``, ``rewards`` -> ``reward``, ``dones`` -> ``terminated``;
``truncated`` is set at the last step of an episode that is not done; ``episode_id`` is the
episode's position, ``step`` the step, ``intervention`` True (a human acted),
``policy_version`` -1, ``stamp_ns`` step / control_hz (0 without control_hz).

The new store is written into a temporary sibling folder and renamed into place at the end,
so a failed import leaves nothing at ``out``; ``out`` must be absent or an empty folder, and
the inputs are only read.

    python -m realrl_replay.import_demos OUT INPUT [--format robomimic|npz|store|lerobot]
        [--robot NAME] [--state-keys k1,k2] [--like STORE | --description FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from realrl_common.transition import (
    INSTRUCTION_BYTES,
    TRANSITION,
    Dims,
    TransitionSchema,
    encode_text,
)

from .config import StoreConfig, WriterConfig
from .errors import StoreError
from .import_lerobot import lerobot_v3_episodes
from .layout import fsync_dir
from .reader import ReplayReader
from .schema import LINK, ROBOT_ID, SEQ
from .writer import ReplayWriter

FORMATS = ('robomimic', 'npz', 'store', 'lerobot')


class DemoFormatError(ValueError):
    """An input is not in the layout its format requires; the message names what is wrong."""


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote: the store, episodes, transitions and fields."""

    path: Path
    episodes: int
    transitions: int
    fields: tuple[str, ...]


# ------------------------------------------------------------------------------- episodes
@dataclass
class Episode:
    """One demonstration as arrays over its T steps."""

    name: str
    obs: dict[str, np.ndarray]
    next_obs: dict[str, np.ndarray] | None
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    instruction: str = ''
    """The episode's language instruction (stored in every row's 'instruction')."""


def robomimic_episodes(path: str | os.PathLike) -> tuple[list[str], Iterator[Episode], dict]:
    """(episode names, episodes, origin metadata) of a robomimic HDF5 file (read-only)."""
    import h5py
    path = Path(path)
    try:
        f = h5py.File(path, 'r')
    except OSError as e:
        raise DemoFormatError(f'{path}: not a readable HDF5 file ({e})') from None
    if 'data' not in f or not isinstance(f['data'], h5py.Group):
        f.close()
        raise DemoFormatError(f"{path}: not robomimic layout (no group 'data')")
    names = sorted((k for k in f['data'] if re.fullmatch(r'demo_\d+', k)),
                   key=lambda k: int(k.split('_')[1]))
    if not names:
        f.close()
        raise DemoFormatError(f"{path}: not robomimic layout (no 'data/demo_<N>' groups)")
    origin = {'format': 'robomimic', 'path': str(path.resolve())}
    env_args = f['data'].attrs.get('env_args')
    if env_args is not None:
        try:
            origin['env_args'] = json.loads(env_args)
        except (TypeError, ValueError):
            origin['env_args'] = str(env_args)

    def load(group) -> dict[str, np.ndarray]:
        return {k: np.asarray(group[k]) for k in group}

    def episodes() -> Iterator[Episode]:
        try:
            for name in names:
                demo = f['data'][name]
                missing = [k for k in ('obs', 'actions', 'rewards', 'dones') if k not in demo]
                if missing:
                    raise DemoFormatError(f'{path}: data/{name} lacks {missing} (robomimic '
                                          'layout: obs/<key>, actions, rewards, dones)')
                yield Episode(name, load(demo['obs']),
                              load(demo['next_obs']) if 'next_obs' in demo else None,
                              np.asarray(demo['actions']), np.asarray(demo['rewards']),
                              np.asarray(demo['dones']))
        finally:
            f.close()
    return names, episodes(), origin


def npz_episodes(folder: str | os.PathLike) -> tuple[list[str], Iterator[Episode], dict]:
    """(episode names, episodes, origin metadata) of a folder of per-episode .npz files."""
    folder = Path(folder)
    files = sorted(folder.glob('*.npz'))
    if not files:
        raise DemoFormatError(f'{folder}: no *.npz episode files')
    origin: dict[str, Any] = {'format': 'npz', 'path': str(folder.resolve())}
    session = folder / 'session.json'
    if session.exists():
        try:
            origin['session'] = json.loads(session.read_text())
        except ValueError as e:
            raise DemoFormatError(f'{session}: not JSON ({e})') from None

    def episodes() -> Iterator[Episode]:
        for file in files:
            try:
                with np.load(file, allow_pickle=False) as z:
                    data = {k: z[k] for k in z.files}
            except (OSError, ValueError) as e:
                raise DemoFormatError(f'{file}: not a readable .npz file ({e})') from None
            missing = [k for k in ('actions', 'rewards', 'dones') if k not in data]
            obs = {k[4:]: v for k, v in data.items() if k.startswith('obs/')}
            if missing or not obs:
                raise DemoFormatError(f'{file}: lacks {missing or ["obs/<key>"]} (arrays '
                                      'obs/<key>, actions, rewards, dones)')
            nxt = {k[9:]: v for k, v in data.items() if k.startswith('next_obs/')} or None
            yield Episode(file.stem, obs, nxt, data['actions'], data['rewards'], data['dones'])
    return [f.stem for f in files], episodes(), origin


# -------------------------------------------------------------------------------- mapping
def _is_image(a: np.ndarray) -> bool:
    return a.ndim == 4 and a.shape[-1] == 3 and a.dtype == np.uint8


def _camera(key: str) -> str:
    name = key[:-len('_image')] if key.endswith('_image') else key
    return re.sub(r'[^A-Za-z0-9_\-]', '_', name)


class _Mapper:
    """Turns episodes into the node's columns (named by the transition schema ``fields``);
    fixed by the first episode."""

    def __init__(self, first: Episode, state_keys: Sequence[str] | None, control_hz: float,
                 fields: TransitionSchema = TRANSITION):
        self.fields = fields
        self.images = sorted(k for k, v in first.obs.items() if _is_image(v))
        lowdim = sorted(k for k in first.obs if k not in self.images)
        self.state_keys = list(state_keys) if state_keys else lowdim
        unknown = [k for k in self.state_keys if k not in first.obs or k in self.images]
        if unknown:
            raise DemoFormatError(f'state keys {unknown} are not low-dimensional obs of '
                                  f'episode {first.name!r}; its obs keys: {sorted(first.obs)}')
        self.layout, at = {}, 0
        for k in self.state_keys:
            size = int(np.prod(first.obs[k].shape[1:], dtype=np.int64))
            self.layout[k] = [at, at + size]
            at += size
        self.state_dim = at
        self.action_dim = int(np.prod(first.actions.shape[1:], dtype=np.int64))
        self.control_hz = control_hz
        shapes = {tuple(first.obs[k].shape[1:3]) for k in self.images}
        if len(shapes) > 1:
            raise DemoFormatError(f'cameras of episode {first.name!r} differ in size: {shapes}')
        self.image_size = list(shapes.pop()) if shapes else [0, 0]
        self.dims = Dims(self.state_dim, self.action_dim,
                         tuple(_camera(k) for k in self.images), tuple(self.image_size))

    def schema(self) -> dict:
        """The store fields (without state fields when the demos have no low-dim obs)."""
        return self.fields.store_fields(self.dims)

    def columns(self, ep: Episode, index: int, robot: str, seq0: int) -> dict:
        T = len(ep.actions)
        for name, a in (('rewards', ep.rewards), ('dones', ep.dones)):
            if len(a) != T:
                raise DemoFormatError(f'episode {ep.name!r}: {name} has {len(a)} steps, '
                                      f'actions {T}')
        if T == 0:
            return {}
        obs = self._side(ep.obs, ep.name, T)
        if ep.next_obs is not None:
            nxt = self._side(ep.next_obs, ep.name, T)
        else:
            nxt = {k: np.concatenate([v[1:], v[-1:]]) for k, v in obs.items()}
        dones = np.asarray(ep.dones).reshape(T).astype(bool)
        truncated = np.zeros(T, bool)
        truncated[-1] = not dones[-1]
        step = np.arange(T)
        values = {'state': obs.pop('state', None), 'next_state': nxt.pop('state', None),
                  'images': obs, 'next_images': nxt,
                  'action': np.asarray(ep.actions, np.float32).reshape(T, self.action_dim),
                  'reward': np.asarray(ep.rewards, np.float32).reshape(T),
                  'terminated': dones, 'truncated': truncated,
                  'episode_id': np.full(T, index, np.int64), 'step': step.astype(np.int32),
                  'policy_version': np.full(T, -1, np.int64), 'intervention': np.ones(T, bool),
                  'instruction': np.tile(encode_text(ep.instruction, INSTRUCTION_BYTES,
                                                     f'episode {ep.name!r}: its instruction'),
                                         (T, 1)) if ep.instruction else None,
                  'stamp_ns': (step * (1e9 / self.control_hz) if self.control_hz
                               else np.zeros(T)).astype(np.int64)}
        cols = self.fields.store_columns(values, T, self.dims)
        cols.update({ROBOT_ID: [robot] * T, SEQ: seq0 + step})
        return cols

    def _side(self, obs: Mapping[str, np.ndarray], name: str, T: int) -> dict:
        """'state' -> (T, state_dim), camera -> (T, H, W, 3)."""
        missing = [k for k in self.state_keys + self.images if k not in obs]
        if missing:
            raise DemoFormatError(f'episode {name!r} lacks obs {missing}')
        out = {}
        if self.state_dim:
            parts = []
            for k in self.state_keys:
                a = np.asarray(obs[k])
                if len(a) != T:
                    raise DemoFormatError(f'episode {name!r}: obs {k!r} has {len(a)} steps, '
                                          f'actions {T}')
                parts.append(a.reshape(T, -1).astype(np.float32))
            out['state'] = np.concatenate(parts, axis=1)
            if out['state'].shape[1] != self.state_dim:
                raise DemoFormatError(f'episode {name!r}: state has {out["state"].shape[1]} '
                                      f'values, the first episode {self.state_dim}')
        for k in self.images:
            a = np.asarray(obs[k])
            if a.shape != (T, *self.image_size, 3) or a.dtype != np.uint8:
                raise DemoFormatError(f'episode {name!r}: obs {k!r} is {a.shape} {a.dtype}, '
                                      f'expected {(T, *self.image_size, 3)} uint8')
            out[_camera(k)] = a
        return out

    def description(self, robot: str, actions: np.ndarray) -> dict:
        return {'robot_id': robot, 'kind': 'demonstration', 'control_hz': self.control_hz,
                'state_dim': self.state_dim, 'state_layout': self.layout,
                'action_dim': self.action_dim,
                'action_low': np.min(actions, 0).reshape(-1).astype(float).tolist(),
                'action_high': np.max(actions, 0).reshape(-1).astype(float).tolist(),
                'action_units': '', 'cameras': [_camera(k) for k in self.images],
                'image_size': self.image_size, 'episode_max_steps': 0, 'capabilities': []}


# ------------------------------------------------------------------------------- importing
def import_demos(out: str | os.PathLike, source: str | os.PathLike, fmt: str | None = None, *,
                 robot: str = 'demo', state_keys: Sequence[str] | None = None,
                 description: Mapping | None = None, control_hz: float = 0.0,
                 robots: Sequence[str] | None = None, where: tuple[str, Any] | None = None,
                 store_config: StoreConfig | None = None,
                 fields: TransitionSchema = TRANSITION) -> ImportReport:
    """Write the demonstrations at ``source`` into a new store at ``out`` (see the module
    docstring). ``description`` (a robot description, as the replay node keeps) overrides
    the derived one key by key: give the online robot's to make the stores mixable.
    ``robots``/``where`` select rows of a ``store`` source. ``fields``: the transition
    schema whose fields the store gets (those the demos lack hold their default)."""
    source, out = Path(source), Path(out)
    fmt = fmt or detect_format(source)
    if fmt not in FORMATS:
        raise ValueError(f'unknown format {fmt!r}; known: {list(FORMATS)}')
    _check_out(out)
    tmp = out.parent / f'.{out.name}.importing-{os.getpid()}'
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        if fmt == 'store':
            report = _import_store(tmp, source, robots, where, store_config)
        else:
            report = _import_episodes(tmp, source, fmt, robot, state_keys, description,
                                      control_hz, store_config, fields)
        if out.exists():
            out.rmdir()  # empty (checked); the rename needs it gone or empty
        os.rename(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ImportReport(out, report.episodes, report.transitions, report.fields)


def detect_format(source: Path) -> str:
    """The format of source (robomimic, store or npz); DemoFormatError if unknown."""
    if source.is_file() and source.suffix.lower() in ('.hdf5', '.h5', '.he5'):
        return 'robomimic'
    if source.is_dir() and (source / 'realrl_replay.json').exists():
        return 'store'
    if source.is_dir() and (source / 'meta' / 'info.json').exists():
        return 'lerobot'
    if source.is_dir() and any(source.glob('*.npz')):
        return 'npz'
    if not source.exists():
        raise DemoFormatError(f'{source}: no such file or folder')
    raise DemoFormatError(f'{source}: cannot tell its format (an .hdf5 file, a realrl store or '
                          f'a folder of .npz episodes); name it with --format {list(FORMATS)}')


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(f'{out}: exists and is not an empty folder; refusing to import there')


def _import_episodes(out: Path, source: Path, fmt: str, robot: str, state_keys, description,
                     control_hz: float, store_config, fields: TransitionSchema) -> ImportReport:
    if fmt == 'lerobot':
        names, episodes, origin = lerobot_v3_episodes(source, DemoFormatError)
        control_hz = control_hz or origin['fps']
    else:
        names, episodes, origin = (robomimic_episodes(source) if fmt == 'robomimic'
                                   else npz_episodes(source))
    episodes = iter(episodes)
    try:
        first = next(episodes)
    except StopIteration:
        raise DemoFormatError(f'{source}: no episodes') from None
    session_desc = origin.get('session', {}).get('robot_description') if fmt == 'npz' else None
    mapper = _Mapper(first, state_keys, control_hz, fields)
    schema = mapper.schema()
    writer = None
    all_actions, seq, count = [], 0, 0
    try:
        for i, ep in enumerate(_chain(first, episodes)):
            cols = mapper.columns(ep, i, robot, seq)
            if not cols:
                continue
            if writer is None:
                desc = mapper.description(robot, cols['action'])
                desc.update(session_desc or {})
                desc.update(description or {})
                desc['robot_id'] = robot
                metadata = {'source': 'demo', 'origin': {**origin, 'episodes': names},
                            'robots': {robot: desc}}
                writer = ReplayWriter.create(out, schema, metadata,
                                             store_config or StoreConfig(), WriterConfig())
            writer.append(cols)
            writer.commit()
            all_actions.append(cols['action'])
            seq += len(cols['action'])
            count += 1
        if writer is None:
            raise DemoFormatError(f'{source}: every episode is empty')
        writer.close()
    except BaseException:
        if writer is not None:
            writer.close(commit=False)
        raise
    return ImportReport(out, count, seq, tuple(schema))


def _chain(first, rest):
    yield first
    yield from rest


def _import_store(out: Path, source: Path, robots, where, store_config) -> ImportReport:
    reader = ReplayReader(source)
    schema = {f.name: (f.shape, f.dtype) for f in reader.schema.user_fields()}
    if where is not None and where[0] not in schema:
        raise ValueError(f'where field {where[0]!r} is not in {source}; known: {sorted(schema)}')
    unknown = [r for r in robots or () if r not in reader.robot_names]
    if unknown:
        raise ValueError(f'robots {unknown} are not in {source}; known: '
                         f'{list(reader.robot_names)}')
    metadata = dict(reader.metadata)
    metadata['origin'] = {'format': 'store', 'path': str(source.resolve()),
                          'uuid': reader.info.identity.uuid,
                          'metadata': reader.metadata, 'robots': list(robots or []),
                          'where': list(where) if where else None}
    metadata['source'] = 'demo'
    if robots:
        metadata['robots'] = {k: v for k, v in metadata.get('robots', {}).items() if k in robots}
    cfg = store_config or StoreConfig(**{**vars(reader.info.config),
                                         'dedup_next_obs': True})
    names = [f.name for f in reader.schema.fields if f.name != LINK]
    episodes, n = set(), 0
    with ReplayWriter.create(out, schema, metadata, cfg, WriterConfig()) as writer:
        step = 4096
        for lo in range(reader.first, reader.count, step):
            idx = np.arange(lo, min(reader.count, lo + step))
            idx = idx[reader.valid(idx)]
            rows = reader.read(idx, names)
            keep = np.ones(len(idx), bool)
            if robots:
                codes = [reader.robot_names.index(r) for r in robots]
                keep &= np.isin(rows[ROBOT_ID], codes)
            if where is not None:
                keep &= rows[where[0]] == np.asarray(where[1]).astype(rows[where[0]].dtype)
            if not keep.any():
                continue
            cols = {k: v[keep] for k, v in rows.items()}
            cols[ROBOT_ID] = [reader.robot_names[c] for c in cols[ROBOT_ID]]
            writer.append(cols)
            writer.commit()
            n += int(keep.sum())
            if 'episode_id' in cols:
                episodes.update(zip(cols[ROBOT_ID], cols['episode_id'].tolist()))
    return ImportReport(out, len(episodes), n, tuple(schema))


# ------------------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    """Command line of the demonstrations import; returns the exit status."""
    ap = argparse.ArgumentParser(prog='python -m realrl_replay.import_demos',
                                 description=__doc__.split('\n\n')[0])
    ap.add_argument('out', help='new store folder (absent or empty)')
    ap.add_argument('input', help='robomimic .hdf5, a folder of .npz episodes, a store, or a '
                                  'LeRobotDataset v3.0 folder')
    ap.add_argument('--format', choices=FORMATS, default=None, help='default: detected')
    ap.add_argument('--robot', default='demo', help="robot_id of the rows (default 'demo')")
    ap.add_argument('--state-keys', default=None,
                    help='comma-separated obs keys concatenated into obs/state (default: all '
                         'low-dimensional keys, sorted)')
    ap.add_argument('--control-hz', type=float, default=0.0, help='for stamp_ns (default 0)')
    group = ap.add_mutually_exclusive_group()
    group.add_argument('--like', default=None,
                       help="take the robot description from this store's metadata (e.g. the "
                            'online store the demos will be mixed with)')
    group.add_argument('--description', default=None, help='robot description JSON file')
    ap.add_argument('--robots', default=None, help='store input: comma-separated robots')
    ap.add_argument('--where', default=None, help='store input: FIELD=VALUE (e.g. '
                                                  'intervention=1)')
    args = ap.parse_args(argv)
    try:
        description = None
        if args.like:
            robots = ReplayReader(args.like).metadata.get('robots') or {}
            if not robots:
                raise ValueError(f'{args.like}: its metadata describes no robot')
            description = next(iter(robots.values()))
        elif args.description:
            description = json.loads(Path(args.description).read_text())
        where = None
        if args.where:
            field, _, value = args.where.partition('=')
            where = (field, json.loads(value))
        report = import_demos(
            args.out, args.input, args.format, robot=args.robot,
            state_keys=args.state_keys.split(',') if args.state_keys else None,
            description=description, control_hz=args.control_hz,
            robots=args.robots.split(',') if args.robots else None, where=where)
    except (StoreError, ValueError, OSError) as e:
        print(f'import_demos: {e}', file=sys.stderr)
        return 2
    print(f'imported {report.episodes} episodes, {report.transitions} transitions into '
          f'{report.path} (fields: {", ".join(report.fields)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
