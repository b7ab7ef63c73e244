"""Frame stacks of sampled rows: each row's camera frame and those of the steps its robot took
just before it in the same episode, read from the store (numpy only, no ROS).

The store keeps one frame per row; a learner whose image encoder sees the last k frames
(``EncoderConfig.frame_stack``) gets them stacked at sampling time. A store interleaves the
rows of several robots in commit order and a robot's rows are in its own order, so the
j-th row before row i that has i's robot and episode is the robot's j-th previous step.
``preceding_rows`` looks for them in a window before each row and widens the window for the
rows whose robot was drowned out by others'. Before the episode's first row (or the first
row the store still keeps) the earliest one found is repeated, as the usual FrameStack
wrappers repeat the first observation, and as the policy does
(``realrl_policy.frame_stack``).

The next observation's stack needs no search: it is the observation's stack less its
oldest frame, plus the row's next frame (``stack_frames``).
"""
from __future__ import annotations

import numpy as np

from .reader import EPISODE
from .schema import ROBOT_ID

OBS_IMAGE, NEXT_IMAGE = 'obs/image_', 'next_obs/image_'
"""Prefixes of the store's camera fields that are stacked (and their next-step twins)."""


def preceding_rows(reader, index: np.ndarray, k: int, marker=None, read=None) -> np.ndarray:
    """[len(index), k] row indices: the rows of the k-1 steps index[b]'s robot took before it
    in the same episode, oldest first, then index[b] itself; the earliest row found fills
    the slots before the episode's start (or below the store's first kept row), as of
    ``marker`` (default: the reader's last refresh). ``read(rows, fields)`` reads the rows'
    robot and episode (default: from the store; a sampler passes its cache's)."""
    marker = marker or reader.snapshot()
    read = read or (lambda rows, fields: reader.read(rows, fields, marker))
    index = np.asarray(index, np.int64).reshape(-1)
    taken = np.repeat(index[:, None], k, axis=1)
    if k == 1 or not index.size:
        return taken
    own = read(index, [ROBOT_ID, EPISODE])
    found = np.zeros(len(index), np.int64)                 # previous rows found so far
    todo = np.arange(len(index))
    below, width = index.copy(), (k - 1) * max(1, len(marker.robots))
    while todo.size:
        rows = below[todo, None] - 1 - np.arange(width)[None, :]  # nearest first
        inside = rows >= marker.first
        looked = np.unique(rows[inside])
        if looked.size:
            seen = read(looked, [ROBOT_ID, EPISODE])
            pos = np.searchsorted(looked, np.where(inside, rows, looked[0]))
            robot = np.where(inside, seen[ROBOT_ID][pos].astype(np.int64), -1)
            same_robot = robot == own[ROBOT_ID][todo, None]
            same = same_robot & (seen[EPISODE][pos] == own[EPISODE][todo, None])
        else:
            same_robot = same = np.zeros(rows.shape, bool)
        # the episode began (an earlier one of the robot is in the window) or no rows are left
        ended = (same_robot & ~same).any(axis=1) | ~inside[:, -1]
        for j, b in enumerate(todo):
            end = k - 1 - found[b]                         # slots end-1, end-2, ... are free
            hits = rows[j][same[j]][:end]
            taken[b, end - len(hits):end] = hits[::-1]
            found[b] += len(hits)
            if found[b] == k - 1 or ended[j]:
                taken[b, :k - 1 - found[b]] = taken[b, k - 1 - found[b]]  # earliest, repeated
        todo = todo[(found[todo] < k - 1) & ~ended]
        below[todo] -= width
        width *= 2
    return taken


def stack_frames(batch: dict[str, np.ndarray], rows: np.ndarray, previous) -> None:
    """Stack, in ``batch``, every camera field obs/image_<camera> ([B, H, W, C] of the rows
    rows[:, -1]) into [B, H, W, kC]: the frames of rows[:, 0..k-1], oldest first; its twin
    next_obs/image_<camera>, if there, becomes the stack one step later (the observation's
    less its oldest frame, then the next frame). ``previous(flat_rows, [field])`` gives the
    field's frames of the rows as a dict (a reader's read, or a sampler's cache)."""
    n, k = rows.shape
    for name in [f for f in batch if f.startswith(OBS_IMAGE)]:
        own = _pixels(batch[name])                                   # [B, H, W] of pixels
        earlier = _pixels(previous(rows[:, :-1].reshape(-1), [name])[name])
        earlier = earlier.reshape(n, k - 1, *own.shape[1:])
        stack = np.empty((*own.shape, k), own.dtype)
        for j in range(k - 1):
            stack[..., j] = earlier[:, j]
        stack[..., k - 1] = own
        batch[name] = _channels(stack, batch[name])
        twin = NEXT_IMAGE + name[len(OBS_IMAGE):]
        if twin in batch:
            following = np.empty_like(stack)
            following[..., :k - 1] = stack[..., 1:]
            following[..., k - 1] = _pixels(batch[twin])
            batch[twin] = _channels(following, batch[twin])


def _pixels(frames: np.ndarray) -> np.ndarray:
    """[..., C] frames as [...] of C-byte pixels: stacking then copies a pixel at a time
    (twice as fast as copying C-wide slices of the channel axis)."""
    frames = np.ascontiguousarray(frames)
    return frames.view(f'V{frames.shape[-1] * frames.itemsize}')[..., 0]


def _channels(stack: np.ndarray, like: np.ndarray) -> np.ndarray:
    """[..., k] of pixels -> [..., k * C] values of like's dtype."""
    return stack.view(like.dtype).reshape(*stack.shape[:-1], -1)
