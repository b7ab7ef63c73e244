"""Actors from weight archives: built without initialising weights, exactly the sent ones."""
import torch

from realrl_policy import models
from realrl_policy.models import ActorConfig, actor_from_bytes, actor_to_bytes, build_actor


def all_tensors(module):
    return list(module.parameters()) + list(module.buffers())


def test_actor_from_bytes_holds_exactly_the_sent_weights_and_no_meta_tensor():
    cfg = ActorConfig(hidden_sizes=(32, 32))
    sent = build_actor(cfg, 6, 2)
    got = actor_from_bytes(cfg, 6, 2, actor_to_bytes(sent))
    assert not any(t.is_meta for t in all_tensors(got))
    assert sent.state_dict().keys() == got.state_dict().keys()
    for k, v in sent.state_dict().items():
        assert torch.equal(v, got.state_dict()[k]), k
    assert all(p.requires_grad for p in got.parameters())
    assert not got.training
    x = torch.randn(4, 6)
    torch.manual_seed(0)
    want = sent(x)
    torch.manual_seed(0)
    for a, b in zip(want, got(x)):
        assert torch.equal(a, b)


def test_an_actor_with_a_tensor_outside_its_state_dict_is_built_the_ordinary_way(monkeypatch):
    plain = models.build_actor

    def with_constant(cfg, obs_dim, act_dim):
        actor = plain(cfg, obs_dim, act_dim)
        actor.scale = torch.full((act_dim,), 2.0)   # not in the state dict: never sent
        return actor
    monkeypatch.setattr(models, 'build_actor', with_constant)
    cfg = ActorConfig(hidden_sizes=(16,))
    sent = plain(cfg, 5, 3)
    got = actor_from_bytes(cfg, 5, 3, actor_to_bytes(sent))
    assert not got.scale.is_meta and torch.equal(got.scale, torch.full((3,), 2.0))
    assert not any(t.is_meta for t in all_tensors(got))
    for k, v in sent.state_dict().items():
        assert torch.equal(v, got.state_dict()[k]), k


def test_an_actor_whose_constructor_reads_a_tensor_is_built_the_ordinary_way(monkeypatch):
    plain = models.build_actor

    def reads_a_value(cfg, obs_dim, act_dim):
        actor = plain(cfg, obs_dim, act_dim)
        actor.first_bias = float(next(actor.parameters()).detach().flatten()[0])  # not on meta
        return actor
    monkeypatch.setattr(models, 'build_actor', reads_a_value)
    cfg = ActorConfig(hidden_sizes=(16,))
    sent = plain(cfg, 5, 3)
    got = actor_from_bytes(cfg, 5, 3, actor_to_bytes(sent))
    assert not any(t.is_meta for t in all_tensors(got))
    for k, v in sent.state_dict().items():
        assert torch.equal(v, got.state_dict()[k]), k


def npz(save, **arrays) -> bytes:
    import io
    buf = io.BytesIO()
    save(buf, **arrays)
    return buf.getvalue()


def test_a_checked_archive_is_read_without_zipfile_and_gives_the_same_arrays():
    import numpy as np
    import pytest
    rng = np.random.default_rng(0)
    arrays = {'w': rng.standard_normal((33, 7)).astype(np.float32),
              'fortran': np.asfortranarray(rng.standard_normal((5, 3))),
              'scalar': np.float32(2.5) * np.ones((), np.float32),
              'empty': np.zeros((0, 4), np.float32),
              'ints': np.arange(11, dtype=np.int64)}
    data = npz(np.savez, **arrays)
    for checked in (False, True):
        got = models.arrays_from_bytes(memoryview(data), checked)
        assert got.keys() == arrays.keys()
        for k, want in arrays.items():
            assert got[k].dtype == want.dtype and got[k].shape == want.shape, k
            assert np.array_equal(got[k], want), k
            assert got[k].flags.aligned and got[k].flags.writeable, k
    with pytest.raises(ValueError, match='not a stored .npy array'):
        models.arrays_from_bytes(npz(np.savez_compressed, **arrays), checked=True)
    cut = data[:-200]            # the central directory gone: not an archive, either way
    for checked in (False, True):
        with pytest.raises(ValueError, match='not a valid .npz archive'):
            models.arrays_from_bytes(cut, checked)


def test_a_checked_blob_gives_the_same_actor():
    from realrl_policy.weights_blob import pack_actor, unpack
    cfg = ActorConfig(hidden_sizes=(32, 32))
    sent = build_actor(cfg, 6, 2)
    got, _ = unpack(pack_actor(sent), checked=True)
    for k, v in sent.state_dict().items():
        assert torch.equal(v, got.state_dict()[k]), k
