"""One chunk inference for one robot (no ROS): the loaded actor's chunk in robot units.

What a chunk actor must offer (``chunk_models.ChunkMLPActor`` is the reference):
``chunk_horizon`` (int >= 1) and ``act_chunk(obs, deterministic, **inputs)`` returning
``chunk_horizon x act_dim`` values in [-1, 1], where ``obs`` is the actor input the engine
builds (``InferenceEngine.actor_input``: the state, padded into a shared space when the
weights carry one). ``inputs`` holds ``instruction`` (str) if the actor's ``takes_language``
is true and ``images`` (camera -> HxWx3 uint8) if its ``takes_images`` is. An actor without
``act_chunk`` answers with its ``act`` repeated ``hold_rows`` times (a zero-order hold that
covers the steps its answer may come too late for); before the first weights, the
chunk is ``random_horizon`` rows drawn uniformly inside the bounds (version 0).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from realrl_policy.inference import InferenceEngine, from_unit


def infer_chunk(engine: InferenceEngine, robot_id: str, state: np.ndarray,
                rng: np.random.Generator, *, instruction: str = '',
                images: dict | None = None, random_horizon: int = 10,
                hold_rows: int = 1) -> tuple[np.ndarray, int]:
    """(rows x action_dim actions in robot_id's units and bounds, weights version)."""
    robot = engine.spaces[robot_id]
    (actor, version), dim = engine.advance(), robot.low.shape[0]
    if actor is None:
        u = rng.uniform(-1.0, 1.0, size=(random_horizon, dim))
    else:
        obs = engine.actor_input(robot_id, state)
        if callable(getattr(actor, 'act_chunk', None)):
            inputs = {}
            if getattr(actor, 'takes_language', False):
                inputs['instruction'] = instruction
            if getattr(actor, 'takes_images', False):
                inputs['images'] = images or {}
            u = np.asarray(actor.act_chunk(obs, engine.deterministic, **inputs), np.float32)
            u = u.reshape(-1, u.shape[-1])[:, :dim]
        else:
            u = np.asarray(actor.act(obs, deterministic=engine.deterministic))[None, :dim]
            u = np.repeat(u, hold_rows, axis=0)
    rows = from_unit(np.asarray(u, np.float32), robot.low, robot.high).astype(np.float32)
    return rows, version


def padded(fn: Callable[[], tuple], min_s: float, clock=time.monotonic, sleep=time.sleep
           ) -> tuple[tuple, float]:
    """Run ``fn`` and wait until at least ``min_s`` passed since it started (a slower model
    emulated on faster hardware: benchmarks and tests of chunk scheduling); returns its
    result and the seconds it took in all."""
    t0 = clock()
    out = fn()
    left = min_s - (clock() - t0)
    if left > 0:
        sleep(left)
    return out, clock() - t0
