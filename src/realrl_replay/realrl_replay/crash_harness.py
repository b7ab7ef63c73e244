"""SIGKILL torture of the writer, used by the tests and bench/replay_crash.py.

The parent plays the robots (senders): it sends (robot, seq) ranges to a writer process that
plays the replay node (append, pipelined commits up to chunk boundaries as the node makes
them, acknowledge cumulatively once a commit returned), and SIGKILLs it at random moments.
Transitions have the node's layout: obs and next_obs images, next_obs stored as links.
Senders keep everything not yet acknowledged and re-send it to the next writer, which drops
what was already committed. A reader process checks rows all along. At the end
each robot's transitions must be in the store exactly once, acknowledged ones included, and
every row must equal the transition of its (robot, seq).

Transitions are a pure function of (robot, seq) (synthetic.TransitionFactory), so only
(robot, first seq, n) crosses the pipe.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
from dataclasses import dataclass, field

import numpy as np

from .config import StoreConfig, WriterConfig
from .reader import ReplayReader
from .schema import ROBOT_ID, SEQ
from .synthetic import TransitionFactory, example_schema
from .writer import ReplayWriter


@dataclass
class CrashReport:
    """What a crash run did and what the checks found (all losses should be 0)."""

    kills: int = 0
    sent: int = 0
    acked: dict = field(default_factory=dict)
    lost: int = 0
    duplicated: int = 0
    torn: int = 0
    out_of_order: int = 0
    reader_checks: int = 0
    count: int = 0
    recoveries_s: list = field(default_factory=list)


def _schema(image_hw):
    return example_schema(image_hw=image_hw, next_images=True)


def _writer_main(path, image_hw, group, fsync, conn) -> None:
    """Child: the replay node. Messages in: (robot, first_seq, n) or None (finish)."""
    factory = TransitionFactory(_schema(image_hw), noise=1.0, bank_size=16)
    t0 = time.perf_counter()
    writer = ReplayWriter.open(path, WriterConfig(fsync=fsync, io_threads=2))
    conn.send(('hello', dict(writer.commit_info().seqs), time.perf_counter() - t0))
    done, inflight = False, None
    while not done:
        got = 0
        while got < group and conn.poll(0 if got else 0.005):
            msg = conn.recv()
            if msg is None:
                done = True
                break
            robot, first, n = msg
            writer.append(factory.make(robot, np.arange(first, first + n)))
            got += n
        if inflight is not None and inflight.done():
            conn.send(('ack', dict(inflight.result().seqs)))
            inflight = None
        if inflight is None and writer.pending:
            inflight = writer.commit_async(boundary=True)
    info = writer.commit()
    conn.send(('ack', dict(info.seqs)))
    writer.close()
    conn.send(('closed', writer.count))


def _reader_main(path, image_hw, stop, out) -> None:
    """Child: a learner-like reader that checks the newest and random rows while it can."""
    factory = TransitionFactory(_schema(image_hw), noise=1.0, bank_size=16)
    reader = ReplayReader(path, decoded_cache_bytes=8 << 20)
    rng = np.random.default_rng(1)
    torn = checks = last = 0
    while not stop.is_set():
        count = reader.refresh()
        if count < last:
            torn += 1  # a committed count never shrinks
        last = count
        if count:
            idx = np.unique(np.concatenate([np.arange(max(0, count - 48), count),
                                            rng.integers(0, count, 16)]))
            rows = reader.read(idx)
            torn += int((~factory.check(rows, reader.robot_names)).sum())
            checks += len(idx)
        time.sleep(0.005)
    out.put((torn, checks))


def _take_acks(conn, acked: dict, wait_s: float = 0.0) -> str | None:
    """Read the writer's messages (waiting up to wait_s for the first), raising ``acked`` to
    each ack; returns the last message's tag, or 'dead' if the writer is gone."""
    last = None
    try:
        while conn.poll(wait_s):
            wait_s = 0.0
            tag, info = conn.recv()
            last = tag
            if tag == 'ack':
                for x, seq in info.items():
                    acked[x] = max(acked[x], seq)
    except (EOFError, ConnectionResetError, OSError):
        return 'dead'
    return last


def run(path, kills: int, robots: int = 3, image_hw=(32, 32), group: int = 32,
        fsync: bool = True, kill_after_s=(0.02, 0.3), chunk_bytes: int = 64 << 10,
        in_flight: int = 512, seed: int = 0) -> CrashReport:
    """Create a store at ``path``, run ``kills`` kill/restart cycles and a final clean one,
    verify, report. ``in_flight`` bounds the unacknowledged transitions senders keep."""
    ctx = mp.get_context('fork')
    rnd = random.Random(seed)
    store_cfg = StoreConfig(target_chunk_bytes=chunk_bytes, max_chunk_rows=256)
    ReplayWriter.create(path, _schema(image_hw), {'test': 'crash'}, store_cfg,
                        WriterConfig(fsync=fsync)).close()
    names = [f'robot_{i}' for i in range(robots)]
    next_seq = {r: 0 for r in names}    # next new transition of each sender
    acked = {r: -1 for r in names}       # highest acknowledged seq of each sender
    report = CrashReport()
    stop, out = ctx.Event(), ctx.Queue()
    reader = ctx.Process(target=_reader_main, args=(path, image_hw, stop, out), daemon=True)
    reader.start()
    try:
        for cycle in range(kills + 1):
            final = cycle == kills
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_writer_main, args=(path, image_hw, group, fsync, child),
                               daemon=True)
            proc.start()
            child.close()
            _, seqs, recovery_s = parent.recv()
            report.recoveries_s.append(recovery_s)
            for r in names:
                if seqs.get(r, -1) < acked[r]:
                    report.lost += acked[r] - seqs.get(r, -1)
            # senders re-send all unacknowledged transitions, or (as after asking the node for
            # its committed seq) only those the store does not have; both, at random
            resend = {r: (acked[r] if rnd.random() < 0.5 else max(acked[r], seqs.get(r, -1))) + 1
                      for r in names}
            deadline = time.monotonic() + rnd.uniform(*kill_after_s)
            while final or time.monotonic() < deadline:
                pending = [r for r in names if resend[r] < next_seq[r]]
                if final and not pending:
                    break
                unacked = sum(next_seq[r] - acked[r] - 1 for r in names)
                if not pending and unacked >= in_flight:  # senders' buffers are full
                    _take_acks(parent, acked, 0.005)
                    continue
                if pending:
                    r = rnd.choice(pending)
                    first = resend[r]
                    n = min(rnd.randint(1, 24), next_seq[r] - first)
                    resend[r] += n
                else:
                    r = rnd.choice(names)
                    first, n = next_seq[r], rnd.randint(1, 24)
                    next_seq[r] = resend[r] = first + n
                    report.sent += n
                parent.send((r, first, n))
                _take_acks(parent, acked)
            if final:
                parent.send(None)
                while _take_acks(parent, acked, 1.0) not in ('closed', 'dead'):
                    pass
            else:
                proc.kill()  # SIGKILL, at whatever the writer was doing
                report.kills += 1
                _take_acks(parent, acked)  # acks sent before it died reached the senders
            proc.join()
            parent.close()
    finally:
        stop.set()
        torn, checks = out.get(timeout=30)
        reader.join(timeout=10)
        if reader.is_alive():
            os.kill(reader.pid, signal.SIGKILL)
    report.torn, report.reader_checks, report.acked = torn, checks, dict(acked)
    _verify(path, image_hw, names, acked, next_seq, report)
    return report


def _verify(path, image_hw, names, acked, next_seq, report: CrashReport) -> None:
    reader = ReplayReader(path)
    count = reader.refresh()
    report.count = count
    factory = TransitionFactory(_schema(image_hw), noise=1.0, bank_size=16)
    for start in range(0, count, 4096):
        rows = reader.read_range(start, min(count, start + 4096))
        report.torn += int((~factory.check(rows, reader.robot_names)).sum())
    ids = reader.read_range(0, count, [ROBOT_ID, SEQ])
    for r in names:
        if r not in reader.robot_names:
            report.lost += acked[r] + 1
            continue
        seqs = ids[SEQ][ids[ROBOT_ID] == reader.robot_names.index(r)]
        report.duplicated += len(seqs) - len(np.unique(seqs))
        expected = np.arange(next_seq[r])  # after the final clean run, every sent one
        report.lost += len(np.setdiff1d(expected, seqs))
        report.out_of_order += int(np.sum(np.diff(seqs) <= 0))
