"""The learner's actor blob as named tensors and back (what the weights bridge carries)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from realrl_bridge.actor_blob import HEADER, blob_to_state, state_to_blob

from realrl_policy.models import ActorConfig, build_actor
from realrl_policy.weights_blob import pack_actor, unpack


def blob() -> bytes:
    torch.manual_seed(0)
    return pack_actor(build_actor(ActorConfig(hidden_sizes=(8,)), 3, 2), {'obs_dim': 3})


def test_a_rebuilt_blob_unpacks_to_the_same_actor():
    original = blob()
    state = blob_to_state(original)
    assert state[HEADER].dtype == np.uint8 and len(state) > 2
    rebuilt, _ = unpack(state_to_blob(state))
    want, _ = unpack(original)
    for (k, a), (k2, b) in zip(want.state_dict().items(), rebuilt.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


@pytest.mark.parametrize('bad, says', [
    (b'PK\x03\x04 not ours', 'not a realrl actor blob'),
    (blob()[:12], 'cut short'),
    (blob()[:-300], 'not a whole .npz archive'),
])
def test_a_blob_that_is_not_whole_is_refused_with_the_reason(bad, says):
    with pytest.raises(ValueError, match=says):
        blob_to_state(bad)


def test_weights_without_the_header_are_refused():
    state = blob_to_state(blob())
    del state[HEADER]
    with pytest.raises(ValueError, match='header'):
        state_to_blob(state)
