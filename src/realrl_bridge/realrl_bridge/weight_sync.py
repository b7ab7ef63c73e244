"""Weight sync over Zenoh: a server in the cloud, a receiver per site; pulled, paced, resumable.

Keys, under ``Keys.weights(stream)`` (``realrl/weights/<stream>``):

    .../latest                         put by the server on every publish: {"version": v,
                                       "manifest": <the full version's>, "delta": <whether
                                       it sends deltas>} (the manifest of raw versions
                                       only); also answered as a query
    .../manifest/<version>/<base>      query -> the manifest of ``version`` encoded against
                                       ``base`` (0: the receiver has nothing); the server may
                                       answer with base 0 if it no longer knows ``base``
    .../digests/<origin>/<version>     query -> {tensor name: digest} of ``version``, answered
                                       once the server has hashed it (a full version's chunks
                                       do not wait for that)
    .../chunks/<origin>/<version>/<base>/**
                                       query, payload = JSON list of chunk indices -> one reply
                                       per chunk, key .../chunks/<origin>/<version>/<base>/
                                       <index>, its XXH3-64 checksum (8 bytes, big-endian) as
                                       the attachment

``origin`` is the serving ``WeightServer``'s random id, from the manifest: a server
restarted mid-transfer publishes its own version 1 again, and a receiver must not complete
the old payload with the new one's chunks. A request for another origin's chunks or digests
is answered as superseded, and the receiver starts over from the new manifest.

The receiver pulls: on a newer ``latest`` it fetches the manifest (unless it came with the
announcement and is the one to fetch: the receiver holds nothing, or its server sends no
deltas), then asks for the chunks it lacks, a window at a time, and asks again for those
that did not come or failed their checksum; the digests, asked for beside the chunks, check
the whole version at the end. A dropped link loses nothing already received: the next
round asks only for what is missing.
Only the newest version is served (latest wins): a receiver still fetching an older one is
told so and moves to the newest. The server paces every reply through one token bucket
(its bandwidth budget, shared by all receivers).
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import zenoh

from realrl_bridge.link import Keys
from realrl_bridge.receive_buffers import ReceiveBuffers, keep_chunk_memory
from realrl_bridge.weights_codec import (
    CHUNK_SIZE,
    Assembly,
    Encoded,
    Manifest,
    as_numpy,
    checksum,
    digest_all,
    encode,
    parse_digests,
)
from realrl_common.pacing import TokenBucket

SUPERSEDED = b'superseded'
"""Error reply to a request for a version that is no longer the newest."""

Fault = Callable[[int, int, memoryview], 'bytes | memoryview | None']
"""Test seam on the server: (version, chunk index, data) -> data to send, or None to drop."""


WEIGHTS_PRIORITY = zenoh.Priority.DATA_LOW
"""Chunks travel below transitions (data) and far below observations and actions, so a
sync on a congested link delays them the least. Set on the receiver's requests: a reply
travels at its query's priority (Zenoh 1.x ignores, and deprecates, a priority given to
``Query.reply``)."""

class WeightServer:
    """Serves the newest weights of one stream; ``publish`` announces a new version."""

    def __init__(self, session: zenoh.Session, stream: str = 'policy', *, keys: Keys = Keys(),
                 encoding: str = 'raw', delta: bool = True, rate_bytes_s: float | None = None,
                 keep_digests: int = 8, chunk_size: int = CHUNK_SIZE,
                 fault: Fault | None = None, prepare_ahead: int = 2,
                 announce_manifest: bool = True):
        if prepare_ahead < 0:
            raise ValueError(f'prepare_ahead must be >= 0 chunks (0: gathered in line), got '
                             f'{prepare_ahead}')
        keep_chunk_memory()
        self._session = session
        self._root = keys.weights(stream)
        self.encoding = encoding
        self.delta = delta
        self.bucket = TokenBucket(rate_bytes_s, burst=(1 << 20) if rate_bytes_s else None)
        self._keep = keep_digests
        self.chunk_size = chunk_size
        self._fault = fault
        self._announce_manifest = announce_manifest and encoding == 'raw'
        """A raw full version's manifest (its layout: no pass over the tensors) goes out with
        its announcement, so a receiver that holds nothing asks for chunks at once instead
        of asking for the manifest first (one round trip less). bf16 is encoded when asked
        for: its announcement stays short."""
        self._announcement = json.dumps({'version': 0})
        self._ahead = prepare_ahead
        self._gather = ThreadPoolExecutor(1, thread_name_prefix='weight-gather') \
            if self._ahead else None
        """Gathers the next chunks' bytes and checksums while the serving thread waits in
        ``reply`` for the link to take the one before. Done in line, the link idled while
        each chunk was gathered (a cold read of 1 MiB of tensors): on a 16-core host,
        replies gathered in line ran at 1.31x the raw puts beside them, replies gathered
        ahead (checksums included) at 1.11x."""
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix='weight-digests')
        """Hashes each published version (over the digest pool) while its first chunks
        leave: the announcement no longer waits for a pass over the whole state (100M
        parameters: 13 ms on a 2-core VM, 33-37 ms on a 16-core host with two threads)."""
        self.origin = os.urandom(8).hex()
        """This server's id in its manifests and keys (see the module's docstring)."""
        self._lock = threading.Lock()
        self._version = 0
        self._state: dict[str, np.ndarray] = {}
        self._digests: dict[int, Future] = {}
        """version -> its digests (a future: hashed beside the transfer), the last few."""
        self._encoded: dict[tuple[int, int], Encoded] = {}
        self.bytes_sent = 0
        """Chunk bytes replied so far (retries included)."""
        self.asked: Counter[str] = Counter()
        """Requests answered so far, by kind: latest, manifest, digests, chunks."""
        self._stop = threading.Event()
        self._queries: list = []
        self._cv = threading.Condition()
        self._queryable = session.declare_queryable(f'{self._root}/**', self._enqueue)
        self._worker = threading.Thread(target=self._serve, name='weight-server', daemon=True)
        self._worker.start()

    @property
    def version(self) -> int:
        """The newest published version (0: none yet)."""
        return self._version

    def publish(self, state: Mapping, version: int | None = None) -> int:
        """Make ``state`` the newest version (default: previous + 1) and announce it at once
        (its tensors are hashed beside the transfer). Keep the arrays unchanged while they
        are served."""
        arrays = as_numpy(state)
        with self._lock:
            version = self._version + 1 if version is None else int(version)
            if version <= self._version:
                raise ValueError(f'version {version} is not newer than {self._version}')
            self._version, self._state = version, arrays
            self._digests[version] = self._hasher.submit(digest_all, arrays)
            for old in sorted(self._digests)[:-self._keep]:
                del self._digests[old]
            self._encoded.clear()
        note = {'version': version}
        full = self.encoded(version, 0) if self._announce_manifest else None
        if full is not None:            # None: a newer version was published meanwhile
            note.update(delta=self.delta, manifest=full.manifest.__dict__)
        self._announcement = json.dumps(note, separators=(',', ':'))
        self._session.put(f'{self._root}/latest', self._announcement,
                          congestion_control=zenoh.CongestionControl.BLOCK)
        return version

    def encoded(self, version: int, base: int) -> Encoded | None:
        """The encoding of ``version`` against ``base`` (built once); None if superseded. A
        delta waits for both versions' digests; a full version does not."""
        with self._lock:
            if version != self._version:
                return None
            if not self.delta or base not in self._digests or base >= version:
                base = 0
            key = (version, base)
            if key in self._encoded:
                return self._encoded[key]
            state = self._state
            hashes = (self._digests[base], self._digests[version]) if base else None
        enc = encode(state, version, encoding=self.encoding, base=base,
                     base_digests=hashes[0].result() if hashes else None,
                     digests=hashes[1].result() if hashes else None,
                     chunk_size=self.chunk_size, origin=self.origin)
        with self._lock:
            return self._encoded.setdefault(key, enc) if version == self._version else None

    def _enqueue(self, query: zenoh.Query) -> None:
        if self._digests_asked(query):
            return
        with self._cv:
            self._queries.append(query)
            self._cv.notify()

    def _digests_asked(self, query: zenoh.Query) -> bool:
        """If ``query`` asks for a version's digests: answered once they are computed (on
        the hashing thread; the serving thread goes on with chunks), and True."""
        parts = self._request(query)
        if parts[0] != 'digests':
            return False
        self.asked['digests'] += 1
        if len(parts) != 3 or not parts[2].isdigit():
            _reply_last(query, err=f'malformed request {str(query.key_expr)!r}: expected '
                                   f'{self._root}/digests/<origin>/<version>'.encode())
            return True
        with self._lock:
            hashes = self._digests.get(int(parts[2])) if parts[1] == self.origin else None
        if hashes is None:
            _reply_last(query, err=SUPERSEDED)
            return True
        hashes.add_done_callback(lambda done: _send_digests(query, done))
        return True

    def _serve(self) -> None:
        while True:
            with self._cv:
                while not self._queries and not self._stop.is_set():
                    self._cv.wait()
                if self._stop.is_set():
                    return
                query = self._queries.pop(0)
            try:
                self._answer(query)
            except (zenoh.ZError, ValueError, IndexError) as e:   # a malformed request
                _reply_last(query, err=str(e).encode(), drop=False)
            finally:
                query.drop()

    def _request(self, query: zenoh.Query) -> list[str]:
        """The parts of a request's key below this stream's root."""
        return str(query.key_expr)[len(self._root) + 1:].split('/')

    def _answer(self, query: zenoh.Query) -> None:
        parts = self._request(query)
        self.asked[parts[0]] += 1
        if parts == ['latest']:
            query.reply(query.key_expr, self._announcement)
            return
        kind = parts[0]
        if kind == 'chunks':
            if parts[1] != self.origin:         # a version of a server before this one
                query.reply_err(SUPERSEDED)
                return
            parts = parts[1:]
        version, base = int(parts[1]), int(parts[2])
        enc = self.encoded(version, base)
        if enc is None:
            query.reply_err(SUPERSEDED)
            return
        m = enc.manifest
        if kind == 'manifest':
            query.reply(query.key_expr, m.to_bytes())
            return
        if kind != 'chunks' or query.payload is None:
            raise ValueError(f'unknown request {kind!r}, or chunks asked without indices')
        prefix = f'{self._root}/chunks/{self.origin}/{version}/{base}'
        indices = [int(i) for i in json.loads(query.payload.to_bytes())]
        if any(not 0 <= i < m.n_chunks for i in indices):
            raise ValueError(f'chunk indices outside 0..{m.n_chunks - 1}')
        for index, data, sum_bytes in self._prepared(enc, indices):
            if self._stop.is_set() or version != self._version:
                return
            if self._fault is not None:
                data = self._fault(version, index, data)
                if data is None:
                    continue
            self.bucket.take(len(data))
            query.reply(f'{prefix}/{index}', data, attachment=sum_bytes)
            self.bytes_sent += len(data)

    def _prepared(self, enc: Encoded, indices: list[int]):
        """(index, bytes, checksum as sent) of each chunk, ``prepare_ahead`` in advance."""
        if self._gather is None:
            for index in indices:
                yield (index, *_prepare(enc, index))
            return
        pending: deque[tuple[int, Future]] = deque()
        todo = iter(indices)
        try:
            while True:
                while len(pending) <= self._ahead:
                    index = next(todo, None)
                    if index is None:
                        break
                    pending.append((index, self._gather.submit(_prepare, enc, index)))
                if not pending:
                    return
                index, future = pending.popleft()
                yield (index, *future.result())
        finally:           # an answer cut short (superseded, stopped) drops what it prepared
            for _, future in pending:
                future.cancel()

    def close(self) -> None:
        """Stop serving (the session stays open; its owner closes it). Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
            pending, self._queries = self._queries, []
        for query in pending:
            query.drop()
        self._worker.join(timeout=10)
        if self._gather is not None:
            self._gather.shutdown(wait=False, cancel_futures=True)
        self._hasher.shutdown(wait=False, cancel_futures=True)
        self._queryable.undeclare()


def _reply_last(query: zenoh.Query, payload: str | bytes = b'', *, err: bytes | None = None,
                drop: bool = True) -> None:
    """Answer ``query`` (an error if ``err``), then end it unless ``drop`` is False; a querier
    that is gone is not told."""
    try:
        if err is not None:
            query.reply_err(err)
        else:
            query.reply(query.key_expr, payload)
    except zenoh.ZError:
        pass
    finally:
        if drop:
            query.drop()


def _send_digests(query: zenoh.Query, done: Future) -> None:
    """Answer a digests request with the finished hashing ``done`` (then end the query)."""
    if done.cancelled() or done.exception() is not None:
        _reply_last(query, err=b'the server closed before the version was hashed')
    else:
        _reply_last(query, json.dumps(done.result()))


def _announced(note: dict, version: int) -> tuple[Manifest, bool] | None:
    """The full version's manifest in an announcement, and whether its server sends deltas;
    None if it has none, or a malformed one (the receiver then asks for it)."""
    try:
        manifest = Manifest.from_fields(note.get('manifest'))
    except ValueError:
        return None
    if manifest.version != version or manifest.base != 0:
        return None
    return manifest, bool(note.get('delta', True))


def _prepare(enc: Encoded, index: int) -> tuple[bytes, bytes]:
    """Chunk ``index``'s bytes and their checksum as sent (8 bytes, big-endian)."""
    data = enc.chunk(index)
    return data, checksum(data).to_bytes(8, 'big')


@dataclass
class ReceiverState:
    """What a receiver has: kept across a dropped link or a new session (``resume``)."""

    version: int = 0
    state: dict = field(default_factory=dict)
    partial: Assembly | None = None
    chunks_received: int = 0
    """Chunk replies received, duplicates and corrupt ones included."""
    rejected: int = 0
    """Chunks whose checksum did not match (asked for again)."""
    refused: int = 0
    """Whole versions refused (a tensor that did not match its digest): not applied."""
    digests: dict = field(default_factory=dict)
    """The sender's digests of ``state``'s tensors (a delta's base); empty without
    ``verify``."""


class WeightReceiver:
    """Keeps a site's copy of a stream's weights up to date; calls ``on_weights`` per version."""

    def __init__(self, session: zenoh.Session, stream: str = 'policy', *, keys: Keys = Keys(),
                 on_weights: Callable[[int, dict], None] | None = None, window: int = 16,
                 inflight: int = 2, request_timeout_s: float = 30.0, retry_s: float = 0.5,
                 poll_s: float = 5.0, resume: ReceiverState | None = None,
                 verify: bool = True,
                 on_refused: Callable[[int, str], None] | None = None,
                 buffers: ReceiveBuffers | None = None):
        if window < 1 or inflight < 1:
            raise ValueError(f'window and inflight must be >= 1, got {window}, {inflight}')
        keep_chunk_memory()
        self._session = session
        self._root = keys.weights(stream)
        self._on_weights = on_weights
        self._window = window
        self._inflight = inflight
        self._timeout = request_timeout_s
        self._retry_s = retry_s
        self._poll_s = poll_s
        self.last_error = ''
        """The last request that failed (link down, a malformed answer); it is retried."""
        self.state = resume or ReceiverState()
        self._verify = verify
        self._on_refused = on_refused
        self.buffers = buffers if buffers is not None else ReceiveBuffers()
        """Where versions are received: a past version's memory is reused once its tensors
        are dropped (successive versions fault in no new pages)."""
        self._newest = self.state.version
        self._announced: tuple[Manifest, bool] | None = None
        """The newest announcement's manifest of its full version, and whether its server
        encodes deltas."""
        self._refused_version = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cancel = zenoh.CancellationToken()
        """Ends every request in flight at ``close`` (a request otherwise waits for its answer
        up to ``request_timeout_s``)."""
        self._got = threading.Condition()
        self._pool = ThreadPoolExecutor(inflight, thread_name_prefix='weight-fetch')
        self._sub = session.declare_subscriber(f'{self._root}/latest', self._on_latest)
        self._worker = threading.Thread(target=self._run, name='weight-receiver', daemon=True)
        self._worker.start()

    def _on_latest(self, sample: zenoh.Sample) -> None:
        try:
            note = json.loads(sample.payload.to_bytes())
            version = int(note['version'])
        except (ValueError, KeyError, TypeError):
            return  # not an announcement of ours; ignore
        if version >= self._newest:     # the same version again: a restarted server's
            self._announced = _announced(note, version)
        if version > self._newest:
            self._newest = version
            self._wake.set()

    def _pushed(self, version: int) -> Manifest | None:
        """The announced manifest of ``version``, if it is the one to fetch: the receiver
        holds nothing, or its server sends no deltas (else a delta is asked for)."""
        got = self._announced
        if got is None or got[0].version != version or (got[1] and self.state.version):
            return None
        return got[0]

    def wait_version(self, version: int, timeout: float) -> bool:
        """Block until the receiver holds ``version`` or newer."""
        with self._got:
            return self._got.wait_for(lambda: self.state.version >= version, timeout)

    def _ask_latest(self) -> None:
        for reply in self._session.get(f'{self._root}/latest', timeout=self._timeout,
                                       cancellation_token=self._cancel):
            if reply.ok is not None:
                self._on_latest(reply.ok)

    def _run(self) -> None:
        next_poll = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_poll:   # also catches a missed announcement
                    next_poll = time.monotonic() + self._poll_s
                    self._ask_latest()
                if self._newest > self.state.version and self._newest != self._refused_version:
                    self._fetch(self._newest)
                    continue
            except (zenoh.ZError, ValueError) as e:
                self.last_error = f'{type(e).__name__}: {e}'   # retried after a pause
            self._wake.wait(self._retry_s)
            self._wake.clear()

    def _manifest(self, version: int) -> Manifest | None:
        base = self.state.version
        for reply in self._session.get(f'{self._root}/manifest/{version}/{base}',
                                       timeout=self._timeout, cancellation_token=self._cancel):
            if reply.ok is not None:
                return Manifest.from_bytes(reply.ok.payload.to_bytes())
            if reply.err.payload.to_bytes() == SUPERSEDED:
                self._ask_latest()
        return None

    def _fetch(self, version: int) -> None:
        st = self.state
        asm = st.partial
        if asm is None or asm.manifest.version != version or (
                asm.manifest.base and asm.manifest.base != st.version):
            manifest = self._pushed(version) or self._manifest(version)
            if manifest is None:
                self._wake.wait(self._retry_s)
                return
            if asm is None or asm.manifest.identity != manifest.identity:
                asm = st.partial = Assembly(manifest, self.buffers, hash_early=self._verify)
        m = asm.manifest
        digests = self._ask_digests(m) if self._verify and asm.digests is None else None
        while not self._stop.is_set() and self._newest == version:
            missing = asm.missing()
            if not missing:
                break
            windows = [missing[i:i + self._window] for i in range(0, len(missing),
                                                                   self._window)]
            before = len(missing)
            # list: every window ends before any verdict (none still writes into asm)
            if any(list(self._pool.map(lambda w: self._fetch_window(asm, w), windows))):
                st.partial = None       # superseded, or its server is gone: start over
                if self._announced is not None and self._announced[0] is m:
                    self._announced = None     # asked for anew
                return
            if len(asm.missing()) == before:
                self._wake.wait(self._retry_s)  # no progress (link down?): pause, ask again
        if not asm.complete:
            return
        if digests is not None:
            asm.digests = self._read_digests(digests)
            if asm.digests is None:
                self._wake.wait(self._retry_s)     # asked for again on the next round
                return
        try:
            new_state = asm.decode(st.state if m.base else None, digests=asm.digests,
                                   base_digests=st.digests if m.base else None)
        except ValueError as e:   # whole but wrong: not applied, not asked for again
            st.partial, st.refused, self._refused_version = None, st.refused + 1, m.version
            self.last_error = str(e)
            if self._on_refused is not None:
                self._on_refused(m.version, str(e))
            return
        with self._got:
            st.version, st.state, st.partial = m.version, new_state, None
            st.digests = asm.digests or {}
            self._got.notify_all()
        if self._on_weights is not None:
            self._on_weights(m.version, new_state)

    def _ask_digests(self, m: Manifest):
        """Ask for ``m``'s digests now (they come while the chunks do); the replies."""
        return self._session.get(f'{self._root}/digests/{m.origin}/{m.version}',
                                 timeout=self._timeout, cancellation_token=self._cancel)

    def _read_digests(self, replies) -> dict[str, str] | None:
        for reply in replies:
            if reply.ok is not None:
                return parse_digests(reply.ok.payload.to_bytes())
            if reply.err.payload.to_bytes() == SUPERSEDED:
                self._ask_latest()
            else:
                self.last_error = f'digests: {reply.err.payload.to_bytes()!r}'
            return None
        return None

    def _fetch_window(self, asm: Assembly, indices: list[int]) -> bool:
        """Ask for ``indices`` and place what comes; True if the version is superseded (or
        its server gone)."""
        m = asm.manifest
        prefix = f'{self._root}/chunks/{m.origin}/{m.version}/{m.base}'
        replies = self._session.get(f'{prefix}/**', payload=json.dumps(indices),
                                    priority=WEIGHTS_PRIORITY,
                                    timeout=self._timeout, cancellation_token=self._cancel,
                                    consolidation=zenoh.ConsolidationMode.NONE)
        for reply in replies:
            if reply.ok is None:
                superseded = reply.err.payload.to_bytes() == SUPERSEDED
                if superseded:
                    self._ask_latest()
                return superseded
            index = int(str(reply.ok.key_expr).rsplit('/', 1)[1])   # ValueError: retried
            self.state.chunks_received += 1
            sent = reply.ok.attachment
            sent_sum = int.from_bytes(sent.to_bytes(), 'big') if sent is not None else -1
            if not asm.add(index, reply.ok.payload.to_bytes(), sent_sum):
                self.state.rejected += 1
            if self._stop.is_set():
                break
        return False

    def close(self) -> ReceiverState:
        """Stop; returns the state (a partial version included) to resume with later."""
        self._stop.set()
        self._wake.set()
        self._cancel.cancel()   # requests in flight end now; later ones raise ZError at once
        self._worker.join(timeout=self._timeout + 5)
        self._pool.shutdown(wait=True)
        try:
            self._sub.undeclare()
        except zenoh.ZError:
            pass  # the session was closed first; the subscriber went with it
        return self.state
