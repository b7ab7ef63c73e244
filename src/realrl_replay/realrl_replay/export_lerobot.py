"""Export a store's episodes as a LeRobotDataset (format v2.1, images inside the parquet).

Written layout (LeRobot's codebase_version v2.1)::

    <out>/meta/info.json              features, fps, counts, path templates
    <out>/meta/episodes.jsonl         {"episode_index", "tasks", "length"} per episode
    <out>/meta/episodes_stats.jsonl   per-episode min/max/mean/std/count of each feature
    <out>/meta/stats.json             the same over all episodes (v2.0 readers)
    <out>/meta/tasks.jsonl            {"task_index", "task"}
    <out>/data/chunk-XXX/episode_XXXXXX.parquet   one row per frame, 1000 episodes a chunk

Features: every transition field with a ``lerobot`` name in the schema
(``realrl_common.transition``) that the store holds: ``obs/state`` -> ``observation.state``
(float32), ``obs/image_<cam>`` -> ``observation.images.<cam>`` (dtype "image": PNG bytes in
a {bytes, path} struct column, as Hugging Face ``datasets.Image`` stores them; no videos are
written and ``video_path`` is null), ``action``, ``reward`` -> ``next.reward``; and
``terminated or truncated`` -> ``next.done``, ``timestamp`` (step / fps), ``frame_index``,
``episode_index``, ``index``, ``task_index``.
Episodes are a robot's rows of one ``episode_id``, in the order they started; by default only
finished ones (last row terminated or truncated), and never rows evicted by retention.

Videos (mp4) and LeRobot format v3 (episodes in shared files), which current LeRobot reads,
are ``export_lerobot_v3``'s. Not done: a check against LeRobot's own loader (not installed
here); the round trip is tested with pyarrow.

    python -m realrl_replay.export_lerobot STORE OUT [--fps HZ] [--task TEXT] [--all-episodes]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realrl_common.transition import TRANSITION, TransitionSchema

from .errors import StoreError
from .reader import ReplayReader
from .schema import ROBOT_ID

CODEBASE_VERSION = 'v2.1'
CHUNK_SIZE = 1000
DATA_PATH = 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet'


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote: the dataset folder, episodes, frames and features."""

    path: Path
    episodes: int
    frames: int
    features: tuple[str, ...]


def frame_columns(values: dict, n: int, episode: int, index: int, task_index: int,
                  fps: float) -> dict[str, np.ndarray]:
    """LeRobot's bookkeeping columns of an episode's n frames (both formats): next.done
    (terminated or truncated, where the store has them), timestamp, frame, episode, global
    index and task index."""
    done = np.zeros(n, bool)
    for flag in ('terminated', 'truncated'):
        if flag in values:
            done |= values[flag]
    frame = np.arange(n, dtype=np.int64)
    return {'next.done': done, 'timestamp': (frame / fps).astype(np.float32),
            'frame_index': frame, 'episode_index': np.full(n, episode, np.int64),
            'index': index + frame, 'task_index': np.full(n, task_index, np.int64)}


def _feature_column(values: np.ndarray, dtype: str, n: int):
    """One feature's ``n`` values of an episode as a parquet column, and their stats."""
    import pyarrow as pa

    if dtype == 'image':
        return (pa.array([{'bytes': _png(img), 'path': None} for img in values],
                         type=pa.struct([('bytes', pa.binary()), ('path', pa.string())])),
                _image_stats(values))
    if values.ndim == 1:
        return pa.array(values), _stats(values.reshape(n, 1))
    return (pa.array(list(values.reshape(n, -1)),
                     type=pa.list_(pa.from_numpy_dtype(values.dtype))),
            _stats(values.reshape(n, -1)))



def open_for_export(store: str | os.PathLike, out: str | os.PathLike) -> tuple[ReplayReader, Path]:
    """The store's reader and the output folder of a LeRobot export; StoreError if out is
    not absent or an empty folder, ValueError if the store lacks action or episode_id."""
    reader = ReplayReader(store)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(f'{out}: exists and is not an empty folder; refusing to export there')
    for need in ('action', 'episode_id'):
        if need not in reader.schema.by_name:
            raise ValueError(f'{reader.path}: field {need!r} is missing; LeRobot episodes need '
                             'action and episode_id')
    return reader, out

def export_lerobot(store: str | os.PathLike, out: str | os.PathLike, *, fps: float | None = None,
                   task: str | None = None, finished_only: bool = True,
                   robot_type: str | None = None,
                   fields: TransitionSchema = TRANSITION) -> ExportReport:
    """Write the episodes of ``store`` (read-only) as a LeRobotDataset at ``out`` (absent or
    an empty folder; written into a temporary sibling and renamed into place at the end).
    ``fields``: the transition schema that names the exported features."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    reader, out = open_for_export(store, out)
    schema = reader.schema.by_name
    robots = reader.metadata.get('robots') or {}
    first = next(iter(robots.values()), {})
    fps = float(fps or first.get('control_hz') or 0)
    if fps <= 0:
        raise ValueError(f'{reader.path}: no control_hz in its metadata; give fps')
    task = task or reader.metadata.get('task') or first.get('kind') or 'realrl'
    mapping = lerobot_features(fields, schema)  # LeRobot feature -> store field

    episodes = _episodes(reader, finished_only)
    tmp = out.parent / f'.{out.name}.exporting-{os.getpid()}'
    if tmp.exists():
        shutil.rmtree(tmp)
    features = _features(reader, mapping)
    hf_meta = json.dumps({'info': {'features': _hf_features(features)}}).encode()
    try:
        (tmp / 'meta').mkdir(parents=True)
        index = 0
        ep_lines, stat_lines, all_stats = [], [], []
        for e, rows in enumerate(episodes):
            data = reader.read(rows, sorted(set(mapping.values()) | {'terminated', 'truncated'}
                                              & set(schema)))
            n = len(rows)
            cols, stats = {}, {}
            for feat, field in mapping.items():
                cols[feat], stats[feat] = _feature_column(data[field], features[feat]['dtype'], n)
            for feat, values in frame_columns(data, n, e, index, 0, fps).items():
                cols[feat] = pa.array(values)
                stats[feat] = _stats(values.reshape(n, 1))
            table = pa.table(cols).replace_schema_metadata({b'huggingface': hf_meta})
            path = tmp / DATA_PATH.format(episode_chunk=e // CHUNK_SIZE, episode_index=e)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
            ep_lines.append({'episode_index': e, 'tasks': [task], 'length': n})
            stat_lines.append({'episode_index': e, 'stats': stats})
            all_stats.append((n, stats))
            index += n
        if not ep_lines:
            raise ValueError(f'{reader.path}: no {"finished " if finished_only else ""}episodes '
                             'to export')
        total = len(ep_lines)
        info = {
            'codebase_version': CODEBASE_VERSION,
            'robot_type': robot_type or first.get('kind') or 'unknown',
            'total_episodes': total, 'total_frames': index, 'total_tasks': 1,
            'total_videos': 0, 'total_chunks': (total - 1) // CHUNK_SIZE + 1,
            'chunks_size': CHUNK_SIZE, 'fps': fps, 'splits': {'train': f'0:{total}'},
            'data_path': DATA_PATH, 'video_path': None, 'features': features,
            'realrl': {'store': str(Path(reader.path).resolve()),
                       'store_uuid': reader.info.identity.uuid,
                       'metadata': reader.metadata, 'fields': mapping},
        }
        _write_json(tmp / 'meta' / 'info.json', info)
        _write_jsonl(tmp / 'meta' / 'episodes.jsonl', ep_lines)
        _write_jsonl(tmp / 'meta' / 'episodes_stats.jsonl', stat_lines)
        _write_jsonl(tmp / 'meta' / 'tasks.jsonl', [{'task_index': 0, 'task': task}])
        _write_json(tmp / 'meta' / 'stats.json', _merge_stats(all_stats))
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportReport(out, total, index, tuple(features))


def lerobot_features(fields: TransitionSchema, store_fields) -> dict[str, str]:
    """LeRobot feature -> store field, for the schema's exported fields the store holds."""
    cams = fields.store_cameras(store_fields)
    mapping = {}
    for f in fields.fields:
        if not f.lerobot:
            continue
        for cam in (cams if f.per_camera else ('',)):
            if f.store_name(cam) in store_fields:
                mapping[f.lerobot.format(cam=cam)] = f.store_name(cam)
    return mapping


def _episodes(reader: ReplayReader, finished_only: bool) -> list[np.ndarray]:
    """Row indices of each (robot, episode_id), in the order the episodes started."""
    names = [n for n in (ROBOT_ID, 'episode_id', 'terminated', 'truncated')
             if n in reader.schema.by_name]
    keys, rows, ends = [], [], []
    step = 1 << 16
    for lo in range(reader.first, reader.count, step):
        idx = np.arange(lo, min(reader.count, lo + step))
        idx = idx[reader.valid(idx)]
        data = reader.read(idx, names)
        done = np.zeros(len(idx), bool)
        for flag in ('terminated', 'truncated'):
            if flag in data:
                done |= data[flag]
        keys.append(data[ROBOT_ID].astype(np.int64) << 48 | data['episode_id'])
        rows.append(idx)
        ends.append(done)
    if not rows:
        return []
    keys, rows, ends = np.concatenate(keys), np.concatenate(rows), np.concatenate(ends)
    order = np.argsort(keys, kind='stable')
    uniq, starts = np.unique(keys[order], return_index=True)
    groups = np.split(order, starts[1:])
    out = []
    for group in groups:
        if finished_only and not ends[group[-1]]:
            continue
        out.append(rows[group])
    out.sort(key=lambda g: g[0])
    return out


def _features(reader: ReplayReader, mapping: dict) -> dict:
    features = {}
    for feat, field in mapping.items():
        spec = reader.schema.by_name[field]
        if spec.is_image:
            features[feat] = {'dtype': 'image', 'shape': list(spec.shape),
                              'names': ['height', 'width', 'channel']}
        else:
            names = None
            if feat == 'observation.state':
                layout = next(iter((reader.metadata.get('robots') or {}).values()), {}).get(
                    'state_layout')
                if layout:
                    names = [f'{k}_{i}' for k, (a, b) in sorted(layout.items(),
                                                                key=lambda kv: kv[1][0])
                             for i in range(b - a)]
                    names = names if len(names) == int(np.prod(spec.shape)) else None
            features[feat] = {'dtype': str(spec.dtype), 'shape': list(spec.shape) or [1],
                              'names': names}
    features['next.done'] = {'dtype': 'bool', 'shape': [1], 'names': None}
    for name, dtype in (('timestamp', 'float32'), ('frame_index', 'int64'),
                        ('episode_index', 'int64'), ('index', 'int64'), ('task_index', 'int64')):
        features[name] = {'dtype': dtype, 'shape': [1], 'names': None}
    return features


def _hf_features(features: dict) -> dict:
    """The Hugging Face ``datasets`` Features of the parquet columns (schema metadata)."""
    out = {}
    for name, f in features.items():
        if f['dtype'] == 'image':
            out[name] = {'_type': 'Image'}
        elif f['shape'] == [1]:
            out[name] = {'dtype': f['dtype'], '_type': 'Value'}
        else:
            out[name] = {'feature': {'dtype': f['dtype'], '_type': 'Value'},
                         'length': int(np.prod(f['shape'])), '_type': 'Sequence'}
    return out


def _png(img: np.ndarray) -> bytes:
    import cv2
    ok, data = cv2.imencode('.png', np.ascontiguousarray(img[..., ::-1]))  # RGB -> BGR
    if not ok:
        raise ValueError('PNG encoding failed')
    return data.tobytes()


def _stats(values: np.ndarray) -> dict:
    v = values.astype(np.float64)
    return {'min': v.min(0).tolist(), 'max': v.max(0).tolist(), 'mean': v.mean(0).tolist(),
            'std': v.std(0).tolist(), 'count': [len(v)]}


def _image_stats(images: np.ndarray) -> dict:
    """Per channel, over the frames, of values scaled to [0, 1] (shape (3, 1, 1))."""
    v = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0

    def shaped(x):
        return [[[float(c)]] for c in x]
    return {'min': shaped(v.min(0)), 'max': shaped(v.max(0)), 'mean': shaped(v.mean(0)),
            'std': shaped(v.std(0)), 'count': [len(images)]}


def _merge_stats(per_episode: list[tuple[int, dict]]) -> dict:
    out = {}
    for feat in per_episode[0][1]:
        ns = np.array([n for n, _ in per_episode], float)
        mins = np.array([s[feat]['min'] for _, s in per_episode])
        maxs = np.array([s[feat]['max'] for _, s in per_episode])
        means = np.array([s[feat]['mean'] for _, s in per_episode])
        stds = np.array([s[feat]['std'] for _, s in per_episode])
        w = (ns / ns.sum()).reshape(-1, *([1] * (means.ndim - 1)))
        mean = (w * means).sum(0)
        var = (w * (stds ** 2 + (means - mean) ** 2)).sum(0)
        out[feat] = {'min': mins.min(0).tolist(), 'max': maxs.max(0).tolist(),
                     'mean': mean.tolist(), 'std': np.sqrt(var).tolist(),
                     'count': [int(ns.sum())]}
    return out


def _write_json(path: Path, doc) -> None:
    path.write_text(json.dumps(doc, indent=2))


def _write_jsonl(path: Path, docs) -> None:
    path.write_text(''.join(json.dumps(d) + '\n' for d in docs))


def main(argv=None) -> int:
    """Command line of the LeRobot export; returns the exit status."""
    ap = argparse.ArgumentParser(prog='python -m realrl_replay.export_lerobot',
                                 description=__doc__.split('\n\n')[0])
    ap.add_argument('store', help='the store to export (read-only)')
    ap.add_argument('out', help='new dataset folder (absent or empty)')
    ap.add_argument('--fps', type=float, default=None,
                    help="frames per second (default: the robot's control_hz)")
    ap.add_argument('--task', default=None, help='task text of every episode')
    ap.add_argument('--robot-type', default=None, help="default: the robot's kind")
    ap.add_argument('--all-episodes', action='store_true',
                    help='also episodes whose last row is neither terminated nor truncated')
    args = ap.parse_args(argv)
    try:
        report = export_lerobot(args.store, args.out, fps=args.fps, task=args.task,
                                finished_only=not args.all_episodes,
                                robot_type=args.robot_type)
    except (StoreError, ValueError, OSError) as e:
        print(f'export_lerobot: {e}', file=sys.stderr)
        return 2
    print(f'exported {report.episodes} episodes, {report.frames} frames to {report.path} '
          f'(features: {", ".join(report.features)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
