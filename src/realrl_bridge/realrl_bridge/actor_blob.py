"""The learner's actor blob as named tensors, so weight sync can send only what changed.

The learner publishes a blob (``realrl_policy.weights_blob``: ``RRLA1``, a 4-byte header
length, a JSON header, then an uncompressed ``.npz`` of float32 arrays) on
``/learner/weights``. The cloud bridge turns it into a state dict (``blob_to_state``): the
header's bytes as the uint8 tensor ``HEADER`` and each array as ``tensor/<name>``. Those
cross the link through ``weight_sync`` (per-tensor digests: a delta sends only the changed
ones). The edge bridge rebuilds a blob of the same content (``state_to_blob``) for its
policy node. The ``.npz`` is written again, so the bytes differ from the learner's (zip
member dates) while every tensor is identical; the weight sync's digests check that.

No torch, no Zenoh: the format is parsed here with numpy only, and refused with a
ValueError that says what is wrong (a blob that is not an actor blob, or cut short).
"""
from __future__ import annotations

import io
import json
import struct
import zipfile

import numpy as np

MAGIC = b'RRLA1'
"""realrl_policy.weights_blob.MAGIC (not imported: that module needs torch)."""
HEADER = 'header'
"""The state key of the blob's JSON header (as uint8)."""
TENSOR = 'tensor/'
"""The prefix of the state keys of the actor's arrays."""


def blob_to_state(blob: bytes) -> dict[str, np.ndarray]:
    """The actor blob as named arrays; ValueError if it is not a whole realrl actor blob."""
    blob = bytes(blob)
    start = len(MAGIC) + 4
    if not blob.startswith(MAGIC) or len(blob) < start:
        raise ValueError(f'not a realrl actor blob: it does not start with {MAGIC!r} and '
                         f'a header length ({len(blob)} bytes)')
    (n,) = struct.unpack_from('<I', blob, len(MAGIC))
    header = blob[start:start + n]
    if len(header) != n:
        raise ValueError(f'actor blob cut short: header of {n} bytes, {len(header)} present '
                         f'({len(blob)} bytes in all)')
    try:
        json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f'actor blob header is not JSON: {e}') from None
    state = {HEADER: np.frombuffer(header, np.uint8).copy()}
    try:
        archive = np.load(io.BytesIO(blob[start + n:]), allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError('a single array, not an archive of named arrays')
        with archive:
            for name in archive.files:
                state[TENSOR + name] = archive[name]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f'actor blob weights are not a whole .npz archive (cut short or '
                         f'corrupted, {len(blob)} bytes): {e}') from None
    if len(state) == 1:
        raise ValueError('actor blob holds no weights (an empty .npz archive)')
    return state


def state_to_blob(state: dict[str, np.ndarray]) -> bytes:
    """A blob with the content of ``blob_to_state(blob)``; ValueError if a part is missing."""
    if HEADER not in state:
        raise ValueError(f'weights without the actor blob header ({HEADER!r}); not sent by '
                         f'a realrl bridge')
    header = np.asarray(state[HEADER], np.uint8).tobytes()
    arrays = {k[len(TENSOR):]: v for k, v in state.items() if k.startswith(TENSOR)}
    if not arrays:
        raise ValueError('weights hold no actor tensors')
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return MAGIC + struct.pack('<I', len(header)) + header + buf.getvalue()
