"""Export a store's episodes as a LeRobotDataset in the format current LeRobot reads (v3.0:
episodes share Parquet files, camera frames in MP4 files).

Written layout (codebase_version v3.0, as LeRobot's ``datasets/utils.py`` names it)::

    <out>/meta/info.json        features, fps (an integer), counts, path templates
    <out>/meta/stats.json       min/max/mean/std/count of each feature over all frames
    <out>/meta/tasks.parquet    column task_index, indexed by the task's text ('task')
    <out>/meta/episodes/chunk-000/file-000.parquet   one row per episode: episode_index,
        tasks, length, data/chunk_index, data/file_index, dataset_from_index,
        dataset_to_index, videos/<key>/{chunk_index, file_index, from_timestamp,
        to_timestamp}, meta/episodes/{chunk_index, file_index}, stats/<feature>/<stat>
    <out>/data/chunk-000/file-NNN.parquet            one row per frame, every episode
    <out>/videos/<key>/chunk-000/file-000.mp4        each camera's frames, episode after episode

An episode's task is its language instruction (the store's 'instruction' column, its first
row), or ``task`` where it has none. Frames are encoded by OpenCV's VideoWriter with the
'mp4v' codec (MPEG-4 Part 2, the encoder OpenCV's wheel ships; no H.264/AV1 encoder is
installed here), declared as ``video.codec: mpeg4``; ``videos=False`` keeps them in the
Parquet rows as PNG images (dtype 'image') instead. Features, episodes and statistics are
those of the v2.1 export (``export_lerobot``).

LeRobot's own ``LeRobotDataset`` (LeRobot 0.4.2, format v3.0, PyAV video) loads the result in
test_lerobot_own_class.py, in its own venv (scripts/lerobot_venv.sh: LeRobot does not install
beside our pins). test_export_lerobot_v3.py reads it back with pyarrow and OpenCV and checks
the layout itself (templates' files, contiguous indices, episode bounds, timestamps).

    python -m realrl_replay.export_lerobot_v3 STORE OUT [--fps HZ] [--task TEXT]
        [--all-episodes] [--no-videos]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from realrl_common.transition import TRANSITION, TransitionSchema, decode_text

from .errors import StoreError
from .export_lerobot import (
    ExportReport,
    _episodes,
    _feature_column,
    _features,
    _hf_features,
    _image_stats,
    _merge_stats,
    _stats,
    _write_json,
    frame_columns,
    lerobot_features,
    open_for_export,
)

CODEBASE_VERSION = 'v3.0'
CHUNK_SIZE = 1000
DATA_FILE_MB = 100
VIDEO_FILE_MB = 200
DATA_PATH = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
VIDEO_PATH = 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4'
EPISODES_PATH = 'meta/episodes/chunk-000/file-000.parquet'
TASKS_PATH = 'meta/tasks.parquet'
FOURCC = 'mp4v'


def export_lerobot_v3(store: str | os.PathLike, out: str | os.PathLike, *,
                      fps: float | None = None, task: str | None = None,
                      finished_only: bool = True, robot_type: str | None = None,
                      videos: bool = True, fields: TransitionSchema = TRANSITION) -> ExportReport:
    """Write the episodes of ``store`` (read-only) as a LeRobotDataset v3.0 at ``out`` (absent
    or an empty folder; written into a temporary sibling and renamed into place at the end)."""
    reader, out = open_for_export(store, out)
    schema = reader.schema.by_name
    first = next(iter((reader.metadata.get('robots') or {}).values()), {})
    fps = float(fps or first.get('control_hz') or 0)
    if fps <= 0 or abs(fps - round(fps)) > 1e-9:
        raise ValueError(f'{reader.path}: fps must be a whole number of frames per second '
                         f'(LeRobot v3.0 stores an integer), got '
                         f'{fps or "none in the metadata"}: give --fps')
    fps = int(round(fps))
    default_task = task or reader.metadata.get('task') or first.get('kind') or 'realrl'
    mapping = lerobot_features(fields, schema)
    features = _features(reader, mapping)
    video_keys = [k for k, f in features.items() if f['dtype'] == 'image'] if videos else []
    for key in video_keys:
        h, w = features[key]['shape'][:2]
        features[key] = {'dtype': 'video', 'shape': [h, w, 3],
                         'names': ['height', 'width', 'channels'],
                         'info': {'video.height': h, 'video.width': w, 'video.codec': 'mpeg4',
                                  'video.pix_fmt': 'yuv420p', 'video.is_depth_map': False,
                                  'video.fps': fps, 'video.channels': 3, 'has_audio': False}}
    episodes = _episodes(reader, finished_only)
    if not episodes:
        raise ValueError(f'{reader.path}: no {"finished " if finished_only else ""}episodes '
                         'to export')
    tmp = out.parent / f'.{out.name}.exporting-{os.getpid()}'
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        total = _write(reader, tmp, episodes, mapping, features, video_keys, fps, default_task,
                       robot_type or first.get('kind') or 'unknown')
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportReport(out, len(episodes), total, tuple(features))


def _write(reader, tmp: Path, episodes, mapping, features, video_keys, fps: int,
           default_task: str, robot_type: str) -> int:
    """Every file of the dataset under tmp; returns the frames written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp / 'meta').mkdir(parents=True)
    data_features = {k: f for k, f in features.items() if k not in video_keys}
    hf_meta = json.dumps({'info': {'features': _hf_features(data_features)}}).encode()
    tasks: dict[str, int] = {}
    videos = {key: _VideoFile(tmp / VIDEO_PATH.format(video_key=key, chunk_index=0,
                                                     file_index=0), fps) for key in video_keys}
    data = _DataFiles(tmp)
    ep_rows, all_stats, index = [], [], 0
    try:
        for e, rows in enumerate(episodes):
            names = set(mapping.values()) | ({'terminated', 'truncated', 'instruction'}
                                             & set(reader.schema.by_name))
            values = reader.read(rows, sorted(names))
            n = len(rows)
            text = decode_text(values['instruction'][0]) if 'instruction' in values else ''
            task_index = tasks.setdefault(text or default_task, len(tasks))
            cols, stats = {}, {}
            for feat, field in mapping.items():
                if feat in video_keys:
                    stats[feat] = _image_stats(values[field])
                else:
                    cols[feat], stats[feat] = _feature_column(values[field],
                                                              features[feat]['dtype'], n)
            for feat, column in frame_columns(values, n, e, index, task_index, fps).items():
                cols[feat] = pa.array(column)
                stats[feat] = _stats(column.reshape(n, 1))
            table = pa.table(cols).replace_schema_metadata({b'huggingface': hf_meta})
            row = {'episode_index': e, 'tasks': [text or default_task], 'length': n,
                   **data.write(table), 'dataset_from_index': index,
                   'dataset_to_index': index + n}
            for key in video_keys:
                start = videos[key].frames / fps
                videos[key].write(values[mapping[key]])
                row |= {f'videos/{key}/chunk_index': 0, f'videos/{key}/file_index': 0,
                        f'videos/{key}/from_timestamp': start,
                        f'videos/{key}/to_timestamp': videos[key].frames / fps}
            row |= {'meta/episodes/chunk_index': 0, 'meta/episodes/file_index': 0}
            for feat, feat_stats in stats.items():
                for name, v in feat_stats.items():
                    row[f'stats/{feat}/{name}'] = v
            ep_rows.append(row)
            all_stats.append((n, stats))
            index += n
    finally:
        data.close()
        for video in videos.values():
            video.close()
    (tmp / EPISODES_PATH).parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(ep_rows), tmp / EPISODES_PATH)
    _write_tasks(tmp / TASKS_PATH, tasks)
    info = {'codebase_version': CODEBASE_VERSION, 'robot_type': robot_type,
            'total_episodes': len(ep_rows), 'total_frames': index, 'total_tasks': len(tasks),
            'chunks_size': CHUNK_SIZE, 'data_files_size_in_mb': DATA_FILE_MB,
            'video_files_size_in_mb': VIDEO_FILE_MB, 'fps': fps,
            'splits': {'train': f'0:{len(ep_rows)}'}, 'data_path': DATA_PATH,
            'video_path': VIDEO_PATH if video_keys else None, 'features': features,
            'realrl': {'store': str(Path(reader.path).resolve()),
                       'store_uuid': reader.info.identity.uuid, 'fields': mapping}}
    _write_json(tmp / 'meta' / 'info.json', info)
    _write_json(tmp / 'meta' / 'stats.json', _merge_stats(all_stats))
    return index


class _DataFiles:
    """data/chunk-000/file-NNN.parquet: episodes appended, a new file past DATA_FILE_MB."""

    def __init__(self, root: Path):
        self.root, self.file, self.writer, self.bytes = root, 0, None, 0

    def write(self, table) -> dict:
        import pyarrow.parquet as pq
        if self.writer is not None and self.bytes + table.nbytes > DATA_FILE_MB << 20:
            self.close()
            self.file += 1
        if self.writer is None:
            path = self.root / DATA_PATH.format(chunk_index=0, file_index=self.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writer, self.bytes = pq.ParquetWriter(path, table.schema), 0
        self.writer.write_table(table)
        self.bytes += table.nbytes
        return {'data/chunk_index': 0, 'data/file_index': self.file}

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _VideoFile:
    """One camera's MP4 (OpenCV, mp4v), frames appended episode after episode."""

    def __init__(self, path: Path, fps: int):
        self.path, self.fps, self.writer, self.frames = path, fps, None, 0

    def write(self, frames: np.ndarray) -> None:
        import cv2
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = frames.shape[1:3]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*FOURCC),
                                          self.fps, (w, h))
            if not self.writer.isOpened():
                raise RuntimeError(f'OpenCV could not open an {FOURCC} MP4 writer for '
                                   f'{self.path}; export with videos=False (--no-videos)')
        for img in frames:
            self.writer.write(np.ascontiguousarray(img[..., ::-1]))  # RGB -> BGR
        self.frames += len(frames)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


def _write_tasks(path: Path, tasks: dict[str, int]) -> None:
    """meta/tasks.parquet as pandas writes a frame indexed by 'task' (what LeRobot reads back
    with pandas.read_parquet), without needing pandas here."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    pandas_meta = {'index_columns': ['task'], 'column_indexes': [], 'columns': [
        {'name': 'task_index', 'field_name': 'task_index', 'pandas_type': 'int64',
         'numpy_type': 'int64', 'metadata': None},
        {'name': 'task', 'field_name': 'task', 'pandas_type': 'unicode',
         'numpy_type': 'object', 'metadata': None}]}
    table = pa.table({'task_index': pa.array(list(tasks.values()), pa.int64()),
                      'task': pa.array(list(tasks), pa.string())})
    pq.write_table(table.replace_schema_metadata({b'pandas': json.dumps(pandas_meta).encode()}),
                   path)


def main(argv=None) -> int:
    """The command line: export STORE to OUT; 2 and a message on bad input."""
    p = argparse.ArgumentParser(prog='python -m realrl_replay.export_lerobot_v3',
                                description=__doc__.split('\n')[0])
    p.add_argument('store')
    p.add_argument('out')
    p.add_argument('--fps', type=float, default=None, help='default: the robots\' control_hz')
    p.add_argument('--task', default=None, help='task of episodes without an instruction')
    p.add_argument('--all-episodes', action='store_true', help='also unfinished episodes')
    p.add_argument('--no-videos', action='store_true', help='frames as PNG in the Parquet rows')
    args = p.parse_args(argv)
    try:
        report = export_lerobot_v3(args.store, args.out, fps=args.fps, task=args.task,
                                   finished_only=not args.all_episodes,
                                   videos=not args.no_videos)
    except (StoreError, ValueError, RuntimeError) as e:
        print(f'export_lerobot_v3: {e}', file=sys.stderr)
        return 2
    print(f'wrote {report.episodes} episodes, {report.frames} frames to {report.path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
