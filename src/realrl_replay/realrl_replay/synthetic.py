"""Deterministic synthetic transitions for tests and benchmarks.

Every field of a transition is a function of (robot name, seq), so a reader can check any row
it gets: a row mixing two transitions (torn) or a wrong row fails ``check``. Images are
a flat-shaded simulated tabletop with moving objects, plus optional Gaussian sensor noise
(``noise`` = 0 is like a simulator's render, 1-2 like a real camera), with (seq, robot hash)
stamped into their first 16 bytes.

Episodes are ``episode_len`` seqs long (``episode_id`` = seq // episode_len, ``step`` = seq %
episode_len), and, as a driver sends them, ``next_obs/<x>`` of a transition is the ``obs/<x>``
of the robot's next seq except at the last step of an episode (a terminal frame of its own).
``stamp_ns`` = stamp0_ns + seq * dt_ns.
"""
from __future__ import annotations

import zlib
from typing import Mapping

import numpy as np

from realrl_common.transition import TRANSITION, Dims, TransitionSchema

from .schema import ROBOT_ID, SEQ


def example_schema(image_hw: tuple[int, int] = (128, 128), cameras: int = 2,
                   next_images: bool = False, state_dim: int = 14, action_dim: int = 7,
                   fields: TransitionSchema = TRANSITION) -> dict:
    """The store fields of a typical manipulation robot (cameras '0', '1', ...), from the
    transition schema; without ``next_images``, the next_obs camera fields are left out."""
    dims = Dims(state_dim, action_dim, tuple(str(i) for i in range(cameras)), image_hw)
    schema = fields.store_fields(dims)
    if not next_images:
        nxt = fields.by_name['next_images']
        schema = {k: v for k, v in schema.items() if nxt.camera_of(k) is None}
    return schema


def robot_hash(name: str) -> int:
    """A stable non-negative 31-bit hash of a robot name."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def camera_frames(n: int, hw: tuple[int, int], noise: float, seed: int = 0) -> np.ndarray:
    """``n`` uint8 RGB frames of a simulated tabletop seen by a fixed camera: flat-shaded
    floor, wall and table, a moving cube and ball; ``noise`` adds Gaussian sensor noise (std in
    grey levels; a real camera downscaled to 128x128 shows about 1-2)."""
    rng = np.random.default_rng(seed)
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = h * 0.35
    base = np.empty((h, w, 3), np.float32)
    base[:] = (170, 175, 185)                                      # wall
    floor = yy >= horizon
    shade = 0.75 + 0.25 * (yy - horizon) / max(1.0, h - horizon)   # floor lit from the front
    base[floor] = np.array([120, 110, 95], np.float32) * shade[floor][:, None]
    table = (yy > h * 0.55) & (yy < h * 0.9) & (xx > w * 0.15) & (xx < w * 0.85)
    base[table] = (150, 120, 80)
    base *= (0.6 + 0.4 * np.exp(-((yy - h * 0.6) ** 2 + (xx - w * 0.5) ** 2) / (0.5 * h * w)))[
        ..., None]                                                 # spot light falloff
    frames = np.empty((n, h, w, 3), np.uint8)
    size = max(3, h // 8)
    for i in range(n):
        img = base.copy()
        t = 2 * np.pi * i / n
        cy = int(h * 0.62 + h * 0.1 * np.sin(t))
        cx = int(w * 0.3 + w * 0.3 * (1 + np.cos(t)) / 2)
        img[cy:cy + size, cx:cx + size] = (200, 40, 30)               # cube, lit top face
        img[cy:cy + size // 3, cx:cx + size] = (230, 70, 60)
        by, bx = h * 0.7, w * (0.7 - 0.2 * np.sin(t))
        ball = (yy - by) ** 2 + (xx - bx) ** 2 < (size * 0.6) ** 2
        img[ball] = (40, 70, 200)
        if noise:
            img += rng.normal(0, noise, img.shape).astype(np.float32)
        frames[i] = np.clip(img, 0, 255)
    return frames


class TransitionFactory:
    """Makes and checks transitions of a schema mapping (as given to ReplayWriter.create)."""

    def __init__(self, schema: Mapping, noise: float = 1.0, bank_size: int = 64, seed: int = 0,
                 episode_len: int = 50, stamp0_ns: int = 0, dt_ns: int = 10_000_000):
        self.episode_len, self.stamp0_ns, self.dt_ns = episode_len, stamp0_ns, dt_ns
        self.fields = {}
        for name, spec in schema.items():
            if name in (ROBOT_ID, SEQ):
                continue
            shape, dtype = tuple(spec[0]), np.dtype(spec[1])
            self.fields[name] = (shape, dtype)
        self.banks = {}
        for i, (name, (shape, dtype)) in enumerate(self.fields.items()):
            if len(shape) == 3 and shape[2] == 3 and dtype == np.uint8:
                self.banks[name] = camera_frames(bank_size, shape[:2], noise, seed + i)

    def make(self, robot: str, seqs) -> dict[str, np.ndarray | list]:
        """Stacked columns for ``robot`` at sequence numbers ``seqs``."""
        seqs = np.asarray(seqs, np.int64).reshape(-1)
        n, rh = len(seqs), robot_hash(robot)
        cols: dict = {ROBOT_ID: [robot] * n, SEQ: seqs.copy()}
        for j, (name, (shape, dtype)) in enumerate(self.fields.items()):
            if name in self.banks:
                twin = 'obs/' + name[len('next_obs/'):] if name.startswith('next_obs/') else None
                if twin in self.banks and self.fields[twin] == (shape, dtype):
                    nxt = self._image(twin, seqs + 1, rh)
                    last = (seqs + 1) % self.episode_len == 0
                    if last.any():
                        nxt[last] = self._image(name, seqs[last], rh)  # terminal frame
                    cols[name] = nxt
                else:
                    cols[name] = self._image(name, seqs, rh)
                continue
            if name == 'episode_id' and dtype.kind in 'iu':
                cols[name] = (seqs // self.episode_len).astype(dtype)
                continue
            if name == 'step' and dtype.kind in 'iu':
                cols[name] = (seqs % self.episode_len).astype(dtype)
                continue
            if name == 'stamp_ns' and dtype == np.int64:
                cols[name] = self.stamp0_ns + seqs * self.dt_ns
                continue
            size = int(np.prod(shape, dtype=np.int64))
            base = seqs * 7 + (rh % 1000) + 13 * j
            values = base[:, None] + np.arange(size)[None, :]
            if dtype == np.bool_:
                values = (values % 2).astype(bool)
            elif dtype.kind in 'iu':
                values = (values % (1 << (8 * dtype.itemsize - 2))).astype(dtype)
            else:
                values = (values % 65536).astype(dtype)
            cols[name] = values.reshape(n, *shape)
        return cols

    def _image(self, name: str, seqs: np.ndarray, rh: int) -> np.ndarray:
        bank = self.banks[name]
        imgs = bank[(seqs + rh) % len(bank)]
        stamp = np.stack([seqs, np.full(len(seqs), rh, np.int64)], 1).view(np.uint8)
        imgs.reshape(len(imgs), -1)[:, :16] = stamp
        return imgs

    def records(self, robot: str, seqs) -> list[dict]:
        """The same as ``make``, as a list of per-transition dicts."""
        cols = self.make(robot, seqs)
        return [{k: v[i] for k, v in cols.items()} for i in range(len(cols[SEQ]))]

    def check(self, rows: Mapping[str, np.ndarray], robot_names) -> np.ndarray:
        """Per row: True if every field equals the transition of its (robot, seq)."""
        seqs = rows[SEQ]
        names = [robot_names[c] for c in rows[ROBOT_ID]]
        ok = np.ones(len(seqs), bool)
        for robot in set(names):
            sel = np.array([n == robot for n in names])
            expect = self.make(robot, seqs[sel])
            for name in self.fields:
                got = rows[name][sel]
                ok[sel] &= (got == expect[name]).reshape(len(got), -1).all(1)
        return ok
