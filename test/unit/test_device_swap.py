"""Weights staged into the standby copy of an actor are swapped in whole, between steps."""
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
