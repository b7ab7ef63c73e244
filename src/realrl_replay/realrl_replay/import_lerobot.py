"""Episodes of a LeRobotDataset v3.0 folder (as ``export_lerobot_v3`` writes it, and as
LeRobot's ``datasets/utils.py`` lays it out), for ``import_demos --format lerobot``.

Read with pyarrow and OpenCV (no LeRobot needed): ``meta/info.json`` (features, fps, path
templates), ``meta/episodes/*/*.parquet`` (each episode's rows, video spans and tasks), the
``data`` files and each camera's MP4 (frames from_timestamp * fps on). Features become an
``Episode``: ``observation.state`` and other low-dimensional ``observation.<name>`` ->
obs[<name>], ``observation.images.<cam>`` (video or image) -> obs[<cam>] (H, W, 3 uint8),
``action``, ``next.reward`` (0 without it), ``next.done`` (else the last step), and the
episode's first task as its instruction.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np

IMAGE_PREFIX = 'observation.images.'


def lerobot_v3_episodes(folder: str | Path, error=ValueError
                        ) -> tuple[list[str], Iterator, dict[str, Any]]:
    """(episode names, Episodes, origin metadata incl. 'fps') of a v3.0 dataset folder;
    ``error``: the exception class raised (with the file and the fix) on a bad layout."""
    from .import_demos import Episode
    folder = Path(folder)
    try:
        info = json.loads((folder / 'meta' / 'info.json').read_text())
    except (OSError, ValueError) as e:
        raise error(f'{folder}: no readable meta/info.json ({e})') from None
    if info.get('codebase_version') != 'v3.0':
        raise error(f'{folder}: LeRobot format {info.get("codebase_version")!r}; this importer '
                    "reads v3.0 (convert older datasets with LeRobot's v2.1 -> v3.0 converter)")
    features, fps = info.get('features') or {}, float(info.get('fps') or 0)
    if 'action' not in features:
        raise error(f'{folder}: meta/info.json has no action feature')
    episodes = _table(sorted((folder / 'meta' / 'episodes').glob('*/*.parquet')), error, folder)
    data = _table(sorted((folder / 'data').glob('*/*.parquet')), error, folder)
    order = np.argsort(np.asarray(data['index']))
    data = {k: [v[i] for i in order] for k, v in data.items()}
    videos = [k for k, f in features.items() if f.get('dtype') == 'video']
    lowdim = [k for k, f in features.items() if k.startswith('observation.')
              and not k.startswith(IMAGE_PREFIX) and f.get('dtype') not in ('video', 'image')]
    images = [k for k, f in features.items() if f.get('dtype') == 'image']
    frames: dict[Path, np.ndarray] = {}

    def one(e: int):
        lo, hi = int(episodes['dataset_from_index'][e]), int(episodes['dataset_to_index'][e])
        obs = {k.split('.', 1)[1]: np.asarray(data[k][lo:hi], np.float32) for k in lowdim}
        for k in images:
            obs[k[len(IMAGE_PREFIX):]] = np.stack([_png(c['bytes']) for c in data[k][lo:hi]])
        for k in videos:
            path = folder / info['video_path'].format(
                video_key=k, chunk_index=episodes[f'videos/{k}/chunk_index'][e],
                file_index=episodes[f'videos/{k}/file_index'][e])
            if path not in frames:
                frames[path] = _decode(path, error)
            start = round(float(episodes[f'videos/{k}/from_timestamp'][e]) * fps)
            clip = frames[path][start:start + hi - lo]
            if len(clip) != hi - lo:
                raise error(f'{path}: {len(frames[path])} frames; episode {e} needs '
                            f'{start}..{start + hi - lo}')
            obs[k[len(IMAGE_PREFIX):]] = clip
        n = hi - lo
        rewards = np.asarray(data['next.reward'][lo:hi], np.float32) if 'next.reward' in data \
            else np.zeros(n, np.float32)
        dones = np.asarray(data['next.done'][lo:hi], bool).reshape(n) if 'next.done' in data \
            else np.arange(n) == n - 1
        tasks = list(episodes['tasks'][e] or []) if 'tasks' in episodes else []
        return Episode(f'episode_{episodes["episode_index"][e]}', obs, None,
                       np.asarray(data['action'][lo:hi], np.float32), rewards, dones,
                       instruction=tasks[0] if tasks else '')

    names = [f'episode_{i}' for i in episodes['episode_index']]
    origin = {'format': 'lerobot', 'path': str(folder.resolve()), 'fps': fps,
              'codebase_version': 'v3.0', 'robot_type': info.get('robot_type')}
    return names, (one(e) for e in range(len(names))), origin


def _table(files, error, folder) -> dict[str, list]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    if not files:
        raise error(f'{folder}: no meta/episodes or data Parquet files (not a v3.0 dataset)')
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pydict()


def _decode(path: Path, error) -> np.ndarray:
    import cv2
    cap = cv2.VideoCapture(str(path))
    out = []
    ok, img = cap.read()
    while ok:
        out.append(img[..., ::-1])  # BGR -> RGB
        ok, img = cap.read()
    cap.release()
    if not out:
        raise error(f'{path}: no frames could be decoded (missing, or a codec OpenCV lacks)')
    return np.stack(out)


def _png(data: bytes) -> np.ndarray:
    import cv2
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
