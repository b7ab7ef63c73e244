"""Run inside .venv-lerobot (LeRobot 0.4.2), not by pytest: opens a LeRobotDataset v3.0 folder
with LeRobot's own ``LeRobotDataset`` class (video decoded by PyAV) and writes what it read.

    .venv-lerobot/bin/python lerobot_probe.py INDEX,INDEX,... ROOT OUT.npz [ROOT OUT.npz ...]

(several folders in one process: LeRobot takes seconds to import). Each OUT.npz holds
``summary`` (JSON text: the codebase version, counts, fps, features and their shapes, the
items' keys) and, for each INDEX i, every value of ``dataset[i]`` as ``<i>/<key>`` (camera
frames as LeRobot gives them: C x H x W floats in [0, 1]; the task as text).
"""
import json
import sys

import numpy as np
import torch
from lerobot.datasets.lerobot_dataset import CODEBASE_VERSION, LeRobotDataset


def main(root: str, out: str, indices: list[int]) -> None:
    """Load ROOT with LeRobot's class and save what it returns for ``indices`` into OUT."""
    ds = LeRobotDataset('realrl/export-check', root=root, video_backend='pyav')
    arrays, keys = {}, set()
    for i in indices:
        item = ds[i]
        keys |= set(item)
        for key, value in item.items():
            if isinstance(value, torch.Tensor):
                arrays[f'{i}/{key}'] = value.numpy()
            else:
                arrays[f'{i}/{key}'] = np.array(value)
    summary = {'codebase_version': CODEBASE_VERSION,
               'dataset_version': ds.meta.info['codebase_version'],
               'num_episodes': ds.num_episodes, 'num_frames': ds.num_frames, 'len': len(ds),
               'fps': ds.fps, 'camera_keys': ds.meta.camera_keys,
               'video_keys': ds.meta.video_keys,
               'shapes': {k: list(f['shape']) for k, f in ds.features.items()},
               'dtypes': {k: f['dtype'] for k, f in ds.features.items()},
               'tasks': ds.meta.tasks.index.tolist(), 'item_keys': sorted(keys)}
    np.savez(out, summary=np.array(json.dumps(summary)), **arrays)


if __name__ == '__main__':
    wanted = [int(i) for i in sys.argv[1].split(',')]
    for root_arg, out_arg in zip(sys.argv[2::2], sys.argv[3::2], strict=True):
        main(root_arg, out_arg, wanted)
