"""The actor's weights blob and version from a learner's checkpoint file (no ROS)."""
from __future__ import annotations

from pathlib import Path

import torch


def read_weights_file(path: str | Path) -> tuple[int, bytes]:
    """(version, weights blob) of a checkpoint written by the learner (Trainer.state_dict);
    ValueError naming the file where it holds no actor blob."""
    state = torch.load(Path(path), weights_only=True)
    if not isinstance(state, dict) or 'actor_blob' not in state:
        raise ValueError(f'weights_file {path}: not a learner checkpoint with an actor '
                         f"('actor_blob'); give <run>/checkpoints/latest.pt of a newer run")
    return int(state.get('version', 0)), bytes(state['actor_blob'])
