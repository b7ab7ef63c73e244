"""Weights encoding without a link: chunks, checksums, bf16, deltas, the token bucket."""
from __future__ import annotations

import numpy as np
import pytest
from realrl_bridge.receive_buffers import ReceiveBuffers
from realrl_bridge.weights_codec import (
    Assembly,
    Manifest,
    checksum,
    digest,
    digest_all,
    encode,
    parse_digests,
)


def make_state(n_tensors=40, size=5000, seed=0):
    rng = np.random.default_rng(seed)
    state = {f'layer{i}.weight': rng.standard_normal(size).astype(np.float32)
             for i in range(n_tensors)}
    state['steps'] = np.array([7], dtype=np.int64)
    return state


def assemble(enc, order=None):
    asm = Assembly(Manifest.from_bytes(enc.manifest.to_bytes()))
    for i in order if order is not None else range(enc.manifest.n_chunks):
        assert asm.add(i, bytes(enc.chunk(i)), checksum(enc.chunk(i)))
    return asm


def test_raw_round_trip_in_any_order_is_exact():
    state = make_state()
    enc = encode(state, 1, chunk_size=4096)
    assert enc.manifest.n_chunks == -(-enc.manifest.total_bytes // 4096)
    order = np.random.default_rng(1).permutation(enc.manifest.n_chunks).tolist()
    asm = assemble(enc, order)
    assert asm.hashed == digest_all(state)   # each hashed once its chunks were in
    out = asm.decode(digests=digest_all(state))
    assert out.keys() == state.keys()
    for k in state:
        assert out[k].dtype == state[k].dtype and np.array_equal(out[k], state[k])


def test_corrupt_and_missing_chunks_are_named():
    enc = encode(make_state(), 1, chunk_size=4096)
    asm = Assembly(enc.manifest)
    good = {i: (bytes(enc.chunk(i)), checksum(enc.chunk(i))) for i in range(enc.manifest.n_chunks)}
    bad = bytearray(good[2][0])
    bad[10] ^= 0xFF
    assert not asm.add(2, bytes(bad), good[2][1])
    assert asm.rejected == 1
    for i in range(enc.manifest.n_chunks):
        if i not in (2, 5):
            asm.add(i, *good[i])
    assert asm.missing() == [2, 5]
    with pytest.raises(ValueError, match='2 chunks still missing'):
        asm.decode()
    assert not asm.add(5, good[5][0][:-1], checksum(good[5][0][:-1]))   # truncated
    asm.add(2, *good[2])
    asm.add(5, *good[5])
    assert asm.complete


def test_a_whole_version_whose_tensor_fails_its_digest_is_refused():
    """The chunks' checksums guard the link; the sender's digests guard the whole (a server
    whose tensors changed after it hashed them is caught, and nothing is decoded)."""
    state = make_state(n_tensors=3, size=100)
    enc = encode(state, 4, chunk_size=4096)
    sent = digest_all(state)
    sent['layer1.weight'] = digest(state['layer1.weight'] + 1)
    asm = Assembly(Manifest.from_bytes(enc.manifest.to_bytes()))
    asm.add(0, bytes(enc.chunk(0)), checksum(enc.chunk(0)))
    assert asm.hashed == digest_all(state)
    with pytest.raises(ValueError, match="weights v4: tensor 'layer1.weight' does not match"):
        asm.decode(digests=sent)
    del sent['layer1.weight']
    with pytest.raises(ValueError, match="no digest for tensor 'layer1.weight'"):
        asm.decode(digests=sent)
    assert asm.decode().keys() == state.keys()     # without digests: not checked


def test_chunks_span_tensor_boundaries_and_match_a_concatenation():
    state = make_state(n_tensors=7, size=1000)        # 4000-byte tensors, 3000-byte chunks
    enc = encode(state, 1, chunk_size=3000)
    flat = b''.join(v.tobytes() for v in state.values())
    assert enc.manifest.total_bytes == len(flat)
    joined = b''.join(bytes(enc.chunk(i)) for i in range(enc.manifest.n_chunks))
    assert joined == flat


def test_bf16_halves_the_bytes_within_bf16_precision():
    state = make_state()
    state['tiny'] = np.array([1e-30, -0.0, np.inf, 3.0], dtype=np.float32)
    raw = encode(state, 1)
    bf = encode(state, 1, encoding='bf16')
    assert bf.manifest.total_bytes < 0.51 * raw.manifest.total_bytes
    out = assemble(bf).decode()
    for k, v in state.items():
        assert out[k].dtype == v.dtype
        if v.dtype == np.float32:
            finite = np.isfinite(v)
            # bf16 keeps 8 significant bits: relative error <= 2**-8 with rounding to nearest
            assert np.all(np.abs(out[k][finite] - v[finite]) <= np.abs(v[finite]) * 2.0 ** -8)
            assert np.array_equal(out[k][~finite], v[~finite])
        else:
            assert np.array_equal(out[k], v)


def test_delta_of_five_percent_changed_tensors_is_small():
    base = make_state()
    new = {k: v.copy() for k, v in base.items()}
    changed = ['layer3.weight', 'layer17.weight']   # 2 of 40 weight tensors: 5 %
    for k in changed:
        new[k] += 1.0
    full = encode(new, 2)
    delta = encode(new, 2, base=1, base_digests={k: digest(v) for k, v in base.items()})
    assert delta.manifest.base == 1
    assert delta.manifest.total_bytes == sum(new[k].nbytes for k in changed)
    assert delta.manifest.total_bytes / full.manifest.total_bytes < 0.06
    out = assemble(delta).decode(base, digests=digest_all(new))
    for k in new:
        assert np.array_equal(out[k], new[k])
    with pytest.raises(ValueError, match='delta on 1'):
        assemble(delta).decode()


def test_encode_rejects_bad_arguments():
    with pytest.raises(ValueError, match='encoding'):
        encode(make_state(), 1, encoding='int4')
    with pytest.raises(ValueError, match='version'):
        encode(make_state(), 0)
    with pytest.raises(ValueError, match='chunk_size'):
        encode(make_state(), 1, chunk_size=2 << 20)
    with pytest.raises(ValueError, match='malformed'):
        Manifest.from_bytes(b'{"version": 1}')
    with pytest.raises(ValueError, match='malformed weights digests'):
        parse_digests(b'["a", "b"]')
    assert parse_digests(b'{"w": "00ff"}') == {'w': '00ff'}


def test_a_version_is_known_by_its_sender_and_layout():
    """A receiver keeps a partial version only for the same payload: another sender's
    version of the same number (a restarted server) or another layout is another payload."""
    state = make_state()
    a = encode(state, 1, origin='server-a').manifest
    assert Manifest.from_bytes(a.to_bytes()).identity == a.identity
    assert encode(state, 1, origin='server-b').manifest.identity != a.identity
    assert encode(state, 1, origin='server-a', encoding='bf16').manifest.identity != a.identity
    smaller = dict(state, steps=np.array([7], dtype=np.int32))
    assert encode(smaller, 1, origin='server-a').manifest.identity != a.identity


def test_receive_buffers_are_reused_only_once_no_tensor_uses_them():
    """A version's tensors are views of its buffer: while they live the buffer is never
    handed to the next version (it would overwrite them); once dropped it is reused."""
    buffers = ReceiveBuffers(keep=2)
    s1, s2, s3 = make_state(seed=1), make_state(seed=2), make_state(seed=3)

    def receive(state, version):
        enc = encode(state, version, chunk_size=4096)
        asm = Assembly(enc.manifest, buffers)
        for i in range(enc.manifest.n_chunks):
            assert asm.add(i, enc.chunk(i), checksum(enc.chunk(i)))
        return asm.decode()

    out1 = receive(s1, 1)
    out2 = receive(s2, 2)                 # out1 alive: fresh memory
    assert (buffers.mapped, buffers.reused) == (2, 0)
    assert all(np.array_equal(out1[k], s1[k]) for k in s1)
    del out1
    out3 = receive(s3, 3)                 # reuses version 1's buffer, written over whole
    assert (buffers.mapped, buffers.reused) == (2, 1)
    assert all(np.array_equal(out2[k], s2[k]) for k in s2)
    assert all(np.array_equal(out3[k], s3[k]) for k in s3)
    view = memoryview(buffers.take(0))
    assert view.nbytes == 0
    with pytest.raises(ValueError, match='keep'):
        ReceiveBuffers(keep=-1)


def test_a_delta_takes_base_tensors_known_by_digest_without_hashing_them():
    """A bf16 stream's delta: the held base tensors are lossy copies, so hashing them
    against the sender's digests would refuse every delta; the base version's digests say
    they are the tensors asked for."""
    base = make_state()
    new = {k: v.copy() for k, v in base.items()}
    new['layer3.weight'] += 1.0
    full = encode(base, 1, encoding='bf16')
    held = assemble(full).decode()
    held_digests = digest_all(base)
    delta = encode(new, 2, encoding='bf16', base=1, base_digests=held_digests)
    out = assemble(delta).decode(held, digests=digest_all(new), base_digests=held_digests)
    assert out['layer5.weight'] is held['layer5.weight']
    assert not np.array_equal(out['layer3.weight'], held['layer3.weight'])
    with pytest.raises(ValueError, match="tensor 'layer0.weight' does not match its digest"):
        assemble(delta).decode(held, digests=digest_all(new))
