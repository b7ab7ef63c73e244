"""A watchdog process that stops the graph's nodes if the launcher dies without stopping them.

The supervisor starts it once, with a pipe on its stdin, and writes ``+<pid>`` when a node
starts (each node leads its own session, so its pid is its process group) and ``-<pid>`` when
a node was reaped. Only the launcher holds the pipe's write end (nodes are started with
``close_fds``), so the guard reads end-of-file exactly when the launcher is gone, however it
went, SIGKILL included. It then stops every process group still listed, and every process
descended from them that left its group (a grandchild in a session of its own): SIGINT (nodes
release their DDS shared memory), then SIGTERM, then SIGKILL.

Why not ``PR_SET_PDEATHSIG`` in each node: it fires when the *thread* that forked the node
exits, not the process (a node started from a worker thread would die with that thread), and
it covers neither grandchildren nor nodes that reset it.

Run as a script (no package imports): ``python orphan_guard.py``, stdin from the supervisor.
"""
from __future__ import annotations

import os
import signal
import sys
import time

STEPS = ((signal.SIGINT, 5.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0))


def _parents() -> dict[int, int]:
    """Pid -> parent pid of every process (read from /proc)."""
    out = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat', 'rb') as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b')') + 2:].split()  # after "pid (comm) "
        if fields[0] != b'Z':
            out[int(name)] = int(fields[1])
    return out


def _group_members(groups: set[int]) -> set[int]:
    members = set()
    for pid in _parents():
        try:
            if os.getpgid(pid) in groups:
                members.add(pid)
        except ProcessLookupError:
            pass
    return members


def _descendants(roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def stop(groups: set[int]) -> None:
    """Stop every process of ``groups`` and everything they started, politely first."""
    strays = set()
    for sig, wait_s in STEPS:
        members = _group_members(groups)
        strays = (strays | _descendants(members | strays)) - members
        for group in groups:
            try:
                os.killpg(group, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in strays:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            alive = _parents()
            if not any(pid in alive for pid in _group_members(groups) | strays):
                return
            time.sleep(0.05)


def main() -> None:
    """The guard process: read the launcher's process groups from stdin; at end of file (the
    launcher is gone, however it died) stop them and their strays."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the launcher's
    groups: set[int] = set()
    for line in sys.stdin:  # end of file: the launcher is gone
        line = line.strip()
        if line[:1] in ('+', '-') and line[1:].isdigit():
            (groups.add if line[0] == '+' else groups.discard)(int(line[1:]))
    if groups:
        print(f'realrl orphan guard: the launcher is gone; stopping {len(groups)} node(s) '
              f'{sorted(groups)}', file=sys.stderr, flush=True)
        stop(groups)


if __name__ == '__main__':
    main()
