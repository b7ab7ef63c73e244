"""Process supervision: restart policy, and stop_all leaves no process behind."""
import os
import signal
import subprocess
import sys
import time

import pytest

from realrl_bringup.chaos import node_processes
from realrl_bringup.graph import NodeSpec
from realrl_bringup.shm_cleanup import remove_orphan_segments
from realrl_bringup.supervisor import Supervisor
from realrl_common.config import ConfigError

SLEEPER = [sys.executable, '-c', 'import subprocess, sys, time; '
           'subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]); '
           'time.sleep(600)']
STUBBORN = [sys.executable, '-c', 'import signal, time; '
            'signal.signal(signal.SIGINT, signal.SIG_IGN); '
            'signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)']


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        return open(f'/proc/{pid}/stat').read().split()[2] != 'Z'
    except FileNotFoundError:
        return False


def group_members(pgid):
    out = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            if os.getpgid(int(pid)) == pgid and alive(int(pid)):
                out.append(int(pid))
        except ProcessLookupError:
            pass
    return out


def test_on_failure_restarts_a_killed_node_and_never_a_clean_exit(tmp_path):
    sup = Supervisor(tmp_path, max_restarts=2)
    crash = sup.add(NodeSpec('crash', 'p', 'e', restart='on_failure'), SLEEPER)
    done = sup.add(NodeSpec('done', 'p', 'e', restart='on_failure'),
                   [sys.executable, '-c', 'pass'])
    sup.start_all()
    first = crash.proc.pid
    os.kill(first, signal.SIGKILL)
    time.sleep(0.5)
    events = {m.spec.name: (code, restarted) for m, code, restarted in sup.poll()}
    assert events == {'crash': (-9, True), 'done': (0, False)}
    assert crash.running and crash.proc.pid != first and not done.running
    sup.stop_all(grace_s=2)


def test_a_node_that_exits_on_its_configuration_is_not_restarted(tmp_path):
    """Exit status 2 (spin_node on a ConfigError): a restart would fail the same way."""
    sup = Supervisor(tmp_path, max_restarts=5)
    bad = sup.add(NodeSpec('bad', 'p', 'e', restart='on_failure'),
                  [sys.executable, '-c', 'import sys; print("policy: bad configuration: '
                   'weights_file /x.pt: truncated"); sys.exit(2)'])
    sup.start_all()
    bad.proc.wait(10)
    assert [(code, restarted) for _, code, restarted in sup.poll()] == [(2, False)]
    assert not bad.running and bad.starts == 1 and sup.poll() == []
    assert bad.last_words() == 'policy: bad configuration: weights_file /x.pt: truncated'
    sup.stop_all(grace_s=2)


def test_stop_all_kills_children_and_stubborn_processes(tmp_path):
    sup = Supervisor(tmp_path)
    a = sup.add(NodeSpec('a', 'p', 'e'), SLEEPER)
    b = sup.add(NodeSpec('b', 'p', 'e'), STUBBORN)
    sup.start_all()
    time.sleep(1.0)
    groups = [a.proc.pid, b.proc.pid]
    assert len(group_members(groups[0])) == 2  # the node and the child it started
    codes = sup.stop_all(grace_s=0.5)
    assert set(codes) == {'/a', '/b'}
    assert all(group_members(g) == [] for g in groups)


def test_orphan_shared_memory_is_removed_but_used_files_are_kept(tmp_path):
    shm = tmp_path / 'shm'
    shm.mkdir()
    orphan = shm / 'fastdds_deadbeef'
    orphan.write_bytes(b'x')
    used = shm / 'fastdds_in_use'
    used.write_bytes(b'x')
    other = shm / 'not_ours'
    other.write_bytes(b'x')
    with open(used, 'rb'):
        removed = remove_orphan_segments(since=0.0, shm=shm)
    assert removed == ['fastdds_deadbeef']
    assert used.exists() and other.exists()


def test_files_we_were_seen_using_are_removed_even_if_old_and_our_own_when_exiting(tmp_path):
    shm = tmp_path / 'shm'
    shm.mkdir()
    old_seen = shm / 'fastdds_port7411'
    old_seen.write_bytes(b'x')
    os.utime(old_seen, (1, 1))  # created long before the launcher started
    old_other = shm / 'fastdds_port7413'
    old_other.write_bytes(b'x')
    os.utime(old_other, (1, 1))
    mine = shm / 'fastdds_mine'
    mine.write_bytes(b'x')
    with open(mine, 'rb'):
        assert remove_orphan_segments(since=time.time(), shm=shm, seen={str(old_seen)}) == \
            ['fastdds_port7411']
        assert mine.exists()  # this process holds it
        assert remove_orphan_segments(since=time.time() - 60, shm=shm,
                                      ignore_pids=frozenset({os.getpid()})) == ['fastdds_mine']
    assert old_other.exists()  # never ours: untouched


NODE_WITH_CHILD = ('import subprocess, sys, time; c = subprocess.Popen([sys.executable, "-c", '
                   '"import time; time.sleep(600)"], start_new_session=sys.argv[2] == "own"); '
                   'open(sys.argv[1], "w").write(str(c.pid)); time.sleep(600)')
LAUNCHER = '''
import sys, time
from pathlib import Path
from realrl_bringup.graph import NodeSpec
from realrl_bringup.supervisor import Supervisor
from realrl_common.config import ConfigError
folder = Path(sys.argv[1])
sup = Supervisor(folder / 'logs')
for name, session in (('a', 'same'), ('b', 'same'), ('c', 'own')):
    sup.add(NodeSpec(name, 'p', 'e'), [sys.executable, '-c', sys.argv[2],
                                         str(folder / name), session])
sup.start_all()
(folder / 'nodes').write_text(' '.join(str(m.proc.pid) for m in sup.nodes.values()))
time.sleep(600)
'''


def wait_until(predicate, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_sigkilled_launcher_leaves_no_node_nor_grandchild_behind(tmp_path):
    """A real SIGKILL of the supervising process: its nodes, their children, and a grandchild
    in a session of its own are all stopped (by the orphan guard)."""
    launcher = subprocess.Popen([sys.executable, '-c', LAUNCHER, str(tmp_path), NODE_WITH_CHILD],
                                start_new_session=True)
    pids = []
    try:
        assert wait_until(lambda: all((tmp_path / f).exists() and (tmp_path / f).read_text()
                                      for f in ('nodes', 'a', 'b', 'c')), 60)
        pids = [int(p) for p in (tmp_path / 'nodes').read_text().split()]
        pids += [int((tmp_path / f).read_text()) for f in ('a', 'b', 'c')]
        assert all(alive(p) for p in pids) and len(pids) == 6
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
        assert wait_until(lambda: not any(alive(p) for p in pids), 30), \
            [p for p in pids if alive(p)]
    finally:
        for pid in [launcher.pid] + pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_clean_stop_ends_the_orphan_guard_too(tmp_path):
    sup = Supervisor(tmp_path)
    sup.add(NodeSpec('a', 'p', 'e'), SLEEPER)
    sup.start_all()
    guard = sup._guard
    assert guard is not None and guard.poll() is None
    sup.stop_all(grace_s=2)
    assert guard.poll() == 0 and sup._guard is None


NODE_MODULE = '''import os, sys, time
from pathlib import Path
Path(os.environ['MARKS']).open('a').write(f'imported {os.getpid()}\\n')
def main():
    Path(os.environ['MARKS']).open('a').write(f'ran {os.getpid()} {sys.argv[0]}\\n')
    time.sleep(600)
if __name__ == '__main__':
    main()
'''


def marks(path):
    return path.read_text().splitlines() if path.exists() else []


def test_a_restart_takes_over_the_waiting_standby_which_imported_the_node_ahead(tmp_path):
    """standby: true — the replacement process already imported the node's module before
    the node was killed, becomes the node with the node's argv, and is the one the chaos
    harness finds; stopping the run stops a waiting standby too."""
    (tmp_path / 'standby_node.py').write_text(NODE_MODULE)
    log = tmp_path / 'marks'
    env = dict(os.environ, PYTHONPATH=f'{tmp_path}:{os.environ.get("PYTHONPATH", "")}',
               MARKS=str(log))
    sup = Supervisor(tmp_path / 'logs', env)
    script = str(tmp_path / 'standby_node.py')
    command = [sys.executable, script, '__node:=n']
    m = sup.add(NodeSpec('n', 'p', 'e', restart='on_failure', standby=True), command,
                [sys.executable, '-m', 'realrl_bringup.standby', 'standby_node:main',
                 *command[1:]])
    try:
        sup.start_all()
        first = m.proc.pid
        sup.tend_standbys(now=time.monotonic() + 1e6)
        waiting = m.standby.pid
        assert wait_until(lambda: f'imported {waiting}' in marks(log), 60)
        assert wait_until(lambda: f'ran {first} {script}' in marks(log), 60)
        assert f'ran {waiting} {script}' not in marks(log)  # imported, not yet the node
        assert node_processes(tmp_path) == {'/n': first}  # the standby is not the node
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: not alive(first), 10)
        events = [(e.spec.name, code, restarted) for e, code, restarted in sup.poll()]
        assert events == [('n', -9, True)]
        assert m.proc.pid == waiting and m.promotions == 1 and m.standby is None
        assert wait_until(lambda: f'ran {waiting} {script}' in marks(log), 30)
        assert node_processes(tmp_path) == {'/n': waiting}
        sup.tend_standbys()  # the next standby waits STANDBY_DELAY_S after a promotion
        assert m.standby is None
        sup.tend_standbys(now=time.monotonic() + 1e6)
        spare = m.standby.pid
        assert wait_until(lambda: f'imported {spare}' in marks(log), 60)
    finally:
        sup.stop_all(grace_s=2)
    assert not alive(waiting) and not alive(spare)
    assert f'ran {spare} {script}' not in marks(log)


def test_standby_needs_a_restart_policy():
    with pytest.raises(ConfigError, match='set restart: on_failure, or remove standby'):
        NodeSpec('n', 'p', 'e', standby=True)
