import random

from realrl_common.weights import BlobAssembler, Chunk, chunk_blob


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
