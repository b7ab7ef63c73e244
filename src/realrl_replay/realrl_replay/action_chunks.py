"""Action chunks of sampled rows: each row's action and the ones its robot took after it in the
same episode, read from the store (numpy only, no ROS).

A store interleaves the rows of several robots in the order they were committed; a robot's
rows are in its own order (its seq). So the k-th row after row i that has i's robot and
episode is the robot's k-th next step. ``following_actions`` looks for them in a window
after each row, and widens the window for the rows whose robot was drowned out by others'.
Past the end of an episode the last action is repeated, and so it is past the newest
committed row of an episode still running (its next actions are not stored yet).
"""
from __future__ import annotations

import numpy as np

from .reader import EPISODE
from .schema import ROBOT_ID

ACTION_CHUNK = 'action_chunk'
"""Batch key: [B, H, action_dim] actions of the row and the H-1 after it (store units)."""


def following_actions(reader, index: np.ndarray, horizon: int, marker=None,
                      action_field: str = 'action') -> np.ndarray:
    """[len(index), horizon, action_dim]: row index[b]'s action and the horizon-1 actions its
    robot took after it in the same episode (the last one repeated past the episode's end
    or the store's newest row), as of ``marker`` (default: the reader's last refresh)."""
    marker = marker or reader.snapshot()
    index = np.asarray(index, np.int64).reshape(-1)
    own = reader.read(index, [ROBOT_ID, EPISODE], marker)
    taken = np.repeat(index[:, None], horizon, axis=1)   # the row whose action fills each slot
    found = np.zeros(len(index), np.int64)                # following rows found so far
    todo = np.arange(len(index)) if horizon > 1 else np.zeros(0, np.int64)
    start, width = index + 1, (horizon - 1) * max(1, len(marker.robots))
    while todo.size:
        rows = start[todo, None] + np.arange(width)[None, :]
        inside = rows < marker.count
        looked = np.unique(rows[inside])
        seen = reader.read(looked, [ROBOT_ID, EPISODE], marker)
        pos = np.searchsorted(looked, np.where(inside, rows, looked[0] if looked.size else 0))
        robot = np.where(inside, seen[ROBOT_ID][pos].astype(np.int64) if looked.size else 0, -1)
        same_robot = robot == own[ROBOT_ID][todo, None]
        same = same_robot & (seen[EPISODE][pos] == own[EPISODE][todo, None]) if looked.size \
            else same_robot
        # the episode ended (a later one of the robot began) or the store has no more rows
        ended = (same_robot & ~same).any(axis=1) | ~inside[:, -1]
        for j, b in enumerate(todo):
            hits = rows[j][same[j]][:horizon - 1 - found[b]]
            taken[b, 1 + found[b]:1 + found[b] + len(hits)] = hits
            found[b] += len(hits)
            if found[b] == horizon - 1 or ended[j]:
                taken[b, 1 + found[b]:] = taken[b, found[b]]  # the last one, repeated
        todo = todo[(found[todo] < horizon - 1) & ~ended]
        start[todo] += width
        width *= 2
    flat, inverse = np.unique(taken, return_inverse=True)
    actions = reader.read(flat, [action_field], marker)[action_field]
    return actions[inverse.reshape(taken.shape)]
