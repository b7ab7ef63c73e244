"""Weights staged into the standby copy of an actor are swapped in whole, between steps."""
import sys
import threading
import time

import pytest
import torch
from torch import nn

from realrl_policy.device_swap import DoubleBufferedActor


def weights(value: float) -> dict:
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    for p in net.parameters():
        nn.init.constant_(p, value)
    return net


def test_staged_weights_take_over_at_the_next_step_and_not_before():
    actor = DoubleBufferedActor(weights(0.0))
    x = torch.ones(1, 3)
    assert torch.all(actor.active()(x) == 0)
    first = actor.active()
    actor.stage(weights(1.0).state_dict(), version=7)
    assert torch.all(first(x) == 0), 'the running copy was written'
    assert actor.pending() and actor.version == 0
    now = actor.active()
    assert now is not first and actor.version == 7 and actor.swaps == 1
    assert torch.allclose(now(x), torch.full((1, 2), 17.0))  # 4 units of 3 + 1, summed, + 1
    # The old copy is the standby now; the next weights go there, the active stays whole.
    actor.stage(weights(2.0).state_dict(), version=8)
    assert torch.allclose(now(x), torch.full((1, 2), 17.0))
    assert actor.active() is first and actor.version == 8


def test_weights_of_another_shape_are_refused_with_the_tensor_named():
    actor = DoubleBufferedActor(weights(0.0))
    other = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"'0.weight' have shape \(5, 3\)"):
        actor.stage(other.state_dict(), version=1)
    with pytest.raises(ValueError, match='build a new actor'):
        actor.stage({'0.weight': torch.zeros(4, 3)}, version=1)
    assert not actor.pending() and actor.version == 0


def test_uncommitted_weights_wait_for_their_commit():
    actor = DoubleBufferedActor(weights(0.0))
    first = actor.active()
    actor.stage(weights(1.0).state_dict(), version=3, commit=False)
    assert actor.active() is first and actor.version == 0
    actor.commit(2)                                   # another version's commit
    assert actor.active() is first
    actor.commit(3)
    assert actor.active() is not first and actor.version == 3


def test_a_stage_on_another_thread_never_shows_a_step_mixed_weights():
    # Many tensors, staged while the other thread steps as fast as it can: every step's
    # copy must hold one version's weights throughout (the standby is written under a lock
    # that active() does not wait for).
    def net(value):
        layers = nn.Sequential(*[nn.Linear(64, 64) for _ in range(40)])
        for p in layers.parameters():
            nn.init.constant_(p, value)
        return layers
    actor = DoubleBufferedActor(net(0.0))
    done, seen, mixed = threading.Event(), set(), []

    def step():
        while not done.is_set():
            copy = actor.active()
            values = {p.detach().flatten()[0].item() for p in copy.parameters()}
            if len(values) > 1:
                mixed.append(values)
            seen.add(actor.version)

    staged = [net(float(version)).state_dict() for version in range(1, 41)]
    stepper = threading.Thread(target=step)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)   # threads switch between almost any two bytecodes
    stepper.start()
    try:
        for version, state in enumerate(staged, start=1):
            # committed late, so a whole version is pending when the next stage begins
            actor.stage(state, version, commit=False)
            actor.commit(version)
            deadline = time.monotonic() + 5
            while version % 4 == 0 and actor.version != version and time.monotonic() < deadline:
                time.sleep(0.001)   # every fourth is let in before the next stage
    finally:
        done.set()
        stepper.join()
        sys.setswitchinterval(interval)
    assert not mixed, f'a step saw weights of several versions: {mixed[:3]}'
    assert len(seen) > 2, 'the stepping thread never saw the versions change'


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_the_engine_on_a_gpu_serves_each_version_once_its_copies_arrived():
    from realrl_policy.inference import InferenceEngine
    from realrl_policy.models import ActorConfig, build_actor
    from realrl_policy.weights_blob import pack_actor

    def blob(seed, hidden=(32,)):
        torch.manual_seed(seed)
        return pack_actor(build_actor(ActorConfig(hidden_sizes=hidden), 4, 2))

    gpu, cpu = InferenceEngine(True, device='cuda'), InferenceEngine(True)
    for engine in (gpu, cpu):
        engine.add_robot('arm0', 4, [-1.0, -1.0], [1.0, 1.0])
    state = torch.linspace(-1, 1, 4).numpy()
    for version, hidden in ((1, (32,)), (2, (32,)), (3, (32,)), (4, (16, 16)), (5, (16, 16))):
        b = blob(version, hidden)
        assert cpu.load(version, b) == ''
        prepared = gpu.prepare(version, b)
        assert prepared.staged == (version not in (1, 4))   # new pairs for new shapes
        assert gpu.swap(prepared) == ''
        torch.cuda.synchronize()                            # its copies have arrived
        action, served = gpu.act('arm0', state)
        assert served == version
        assert next(gpu.advance()[0].parameters()).is_cuda
        expected, _ = cpu.act('arm0', state)
        assert torch.allclose(torch.as_tensor(action), torch.as_tensor(expected), atol=1e-5)


def test_a_device_this_machine_lacks_is_named_with_the_fix():
    from realrl_policy.inference import InferenceEngine
    missing = f'cuda:{torch.cuda.device_count()}' if torch.cuda.is_available() else 'cuda'
    with pytest.raises(ValueError, match=rf"device '{missing}': .*set device: cpu"):
        InferenceEngine(device=missing)
    with pytest.raises(ValueError, match="device 'tpu'"):
        InferenceEngine(device='tpu')
