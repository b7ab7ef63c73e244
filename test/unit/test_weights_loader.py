"""The policy's weights loader: versions joined, checked and unpacked off the control thread,
swapped in only when the control thread asks; latest wins; refusals reported."""
from __future__ import annotations

import threading

import torch

from realrl_common.weights import chunk_blob
from realrl_policy.inference import InferenceEngine
from realrl_policy.models import ActorConfig, build_actor
from realrl_policy.weights_blob import pack_actor
from realrl_policy.weights_loader import WeightsLoader


def blob(seed: int) -> bytes:
    torch.manual_seed(seed)
    return pack_actor(build_actor(ActorConfig(hidden_sizes=(16,)), 4, 2))


def test_versions_are_prepared_on_the_loader_thread_and_swapped_by_the_caller():
    engine = InferenceEngine()
    engine.add_robot('arm0', 4, [-1.0, -1.0], [1.0, 1.0])
    calls, cv = [], threading.Condition()

    def on_ready():
        with cv:
            calls.append(threading.get_ident())
            cv.notify_all()

    loader = WeightsLoader(engine.prepare, on_ready)
    try:
        for chunk in chunk_blob(1, blob(1), 1024):
            loader.put(chunk)
        with cv:
            assert cv.wait_for(lambda: len(calls) == 1, 30)
        assert calls[0] != threading.get_ident()     # prepared on the loader's thread
        assert engine.version == 0                   # nothing swapped behind our back
        prepared, errors = loader.take()
        assert errors == [] and prepared.version == 1
        assert engine.swap(prepared) == '' and engine.version == 1
        assert loader.take() == (None, [])

        for chunk in chunk_blob(2, b'RRLA1 but not an actor blob', 1024):
            loader.put(chunk)                        # whole and CRC-right, not a blob
        for version in (3, 4):
            for chunk in chunk_blob(version, blob(version), 1024):
                loader.put(chunk)
        with cv:
            assert cv.wait_for(lambda: len(calls) == 4, 30)
        prepared, errors = loader.take()
        assert prepared.version == 4                 # 3 was replaced before it was taken
        assert len(errors) == 1 and 'blob' in errors[0]
        assert engine.version == 1
    finally:
        loader.close()
