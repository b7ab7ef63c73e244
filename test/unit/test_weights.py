import random

import pytest

from realrl_common.pacing import TokenBucket
from realrl_common.weights import BlobAssembler, Chunk, budget, chunk_blob, send_blob


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self):
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def test_token_bucket_paces_to_the_rate():
    t = FakeTime()
    bucket = TokenBucket(1000.0, burst=500.0, clock=t.clock, sleep=t.sleep)
    for _ in range(20):
        bucket.take(500)
    # 10 000 bytes at 1000 B/s with 500 bytes of initial credit
    assert t.now == pytest.approx(9.5)
    bucket.take(3000)   # larger than the burst: allowed, paid for afterwards
    before = t.now
    bucket.take(500)
    assert t.now - before == pytest.approx(3.0)
    assert TokenBucket(None).take(10 ** 9) == 0.0
    with pytest.raises(ValueError, match='rate'):
        TokenBucket(0)


def test_a_blob_is_sent_whole_in_order_and_paced_to_its_budget():
    """Each chunk goes only once the budget lets its bytes go: 100 kB at 8 kB/s with 4 kB of
    credit take 12 s, and every chunk leaves when its bytes fit (not all at the end)."""
    blob = random.Random(2).randbytes(100_000)
    t = FakeTime()
    sent = []
    waited = send_blob(7, blob, lambda c: sent.append((t.now, c)), chunk_bytes=4000,
                       bucket=TokenBucket(8000.0, burst=4000.0, clock=t.clock,
                                          sleep=t.sleep))
    asm = BlobAssembler()
    assert [asm.add(c) for _, c in sent][-1] == (7, blob)
    assert [c.index for _, c in sent] == list(range(25))
    assert waited == pytest.approx(12.0) and t.now == pytest.approx(12.0)
    assert [round(at, 6) for at, _ in sent] == [round(0.5 * i, 6) for i in range(25)]


def test_a_paced_blob_stops_when_told():
    t = FakeTime()
    sent = []
    send_blob(3, b'q' * 10_000, sent.append, chunk_bytes=1000,
              bucket=TokenBucket(1000.0, burst=1000.0, clock=t.clock, sleep=t.sleep),
              stop=lambda: len(sent) == 4)
    assert [c.index for c in sent] == [0, 1, 2, 3]
    assert BlobAssembler().add(sent[0]) is None     # never whole: never applied


def test_an_unpaced_blob_goes_at_once():
    blob = b'z' * 10_000
    sent = []
    assert send_blob(1, blob, sent.append, chunk_bytes=3000, bucket=budget(0)) == 0.0
    assert send_blob(2, blob, sent.append, chunk_bytes=3000) == 0.0
    assert [c.version for c in sent] == [1] * 4 + [2] * 4
    assert budget(0).rate is None and budget(8).rate == pytest.approx(1e6)
    assert budget(8, 4096).burst == 4096


def test_chunks_reassemble_in_any_order():
    blob = bytes(random.Random(0).randbytes(100_000))
    chunks = chunk_blob(3, blob, chunk_bytes=7_000)
    assert len(chunks) == 15
    random.Random(1).shuffle(chunks)
    asm = BlobAssembler()
    results = [asm.add(c) for c in chunks]
    assert [r for r in results if r] == [(3, blob)]
    assert asm.current_version == 3


def test_corrupted_chunk_is_refused_and_old_versions_are_ignored():
    blob = b'x' * 1000
    chunks = chunk_blob(2, blob, 300)
    bad = Chunk(2, 1, chunks[1].count, chunks[1].total_bytes, chunks[1].crc32, b'y' * 300)
    asm = BlobAssembler()
    for c in [chunks[0], bad, chunks[2], chunks[3]]:
        assert asm.add(c) is None
    assert asm.rejected == 1 and asm.current_version == 0
    good = chunk_blob(5, blob, 300)
    assert [asm.add(c) for c in good][-1] == (5, blob)
    assert all(asm.add(c) is None for c in chunk_blob(4, blob, 300))


def test_newer_version_replaces_a_partial_older_one():
    asm = BlobAssembler()
    old = chunk_blob(1, b'a' * 10, 4)
    new = chunk_blob(2, b'b' * 10, 4)
    asm.add(old[0])
    assert asm.add(new[0]) is None and asm.add(new[1]) is None
    assert asm.add(new[2]) == (2, b'b' * 10)
    assert asm.add(old[1]) is None
