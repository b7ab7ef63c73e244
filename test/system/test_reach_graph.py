"""The whole demo graph through `realrl train`: data reaches the store, weights reach the
policy, a SIGKILLed node is restarted, shutdown leaves nothing behind, and a run resumes."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from ros_env import ROOT, isolate, next_domain_id, require_workspace, wait_for

from realrl_bringup.chaos import run_processes
from realrl_bringup.shm_cleanup import fastdds_files, files_in_use
from realrl_common.scheduling import CPU_WAKE_LATENCY_FILE

FAST = ['--set', 'learner.sac.learning_starts=60', '--set', 'learner.publish_every_s=1.0',
        '--set', 'driver.control_hz=50.0', '--no-stop-at-success', '--status-every-s', '1']


def processes_of(run_dir: Path) -> list[int]:
    """Pids whose command line names the run folder (every node gets its params file)."""
    return run_processes(run_dir)


def shm_files_of(pids) -> set[str]:
    """Fast DDS shared-memory files the given processes map right now."""
    found = set()
    for pid in pids:
        try:
            for line in Path(f'/proc/{pid}/maps').read_text().splitlines():
                if '/dev/shm/fast' in line:
                    found.add(line.split('/dev/shm/', 1)[1].removesuffix(' (deleted)'))
        except OSError:
            continue
    return found


def open_files(pid: int) -> set[str]:
    out = set()
    for fd in Path(f'/proc/{pid}/fd').iterdir():
        try:
            out.add(os.readlink(fd))
        except OSError:   # closed meanwhile
            continue
    return out


def node_pid(run_dir: Path, executable: str) -> int | None:
    for pid in processes_of(run_dir):
        cmd = Path(f'/proc/{pid}/cmdline').read_bytes().split(b'\0')
        if any(part.endswith(executable.encode()) for part in cmd):
            return pid
    return None


def node_logs(run_dir: Path, names=('policy', 'arm0.driver'), tail=3000) -> str:
    """The ends of the named nodes' logs, for a failure message."""
    out = ''
    for name in names:
        path = run_dir / 'logs' / f'{name}.log'
        text = path.read_text(errors='replace') if path.exists() else '(no log)'
        out += f'\n--- {name}.log ---\n{text[-tail:]}'
    return out


class Run:
    def __init__(self, args, log: Path):
        self.log = log
        self.f = open(log, 'ab')
        self.p = subprocess.Popen([str(ROOT / '.venv/bin/realrl'), 'train', *args],
                                  stdout=self.f, stderr=subprocess.STDOUT, cwd=ROOT,
                                  start_new_session=True, env=os.environ.copy())

    def text(self) -> str:
        return self.log.read_text(errors='replace')

    def terminate(self) -> int:
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.send_signal(signal.SIGUSR1)  # realrl prints its threads' stacks
            time.sleep(2)
            raise AssertionError('realrl train did not stop within 60 s of SIGTERM; its output '
                                 'ends with:\n' + self.text()[-6000:]) from None
        finally:
            if self.p.poll() is None:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
            self.f.close()


def store_rows(run_dir: Path) -> dict:
    from realrl_replay.reader import ReplayReader
    reader = ReplayReader(run_dir / 'replay')
    reader.refresh()
    return reader.read_range(0, reader.count, ['seq', 'episode_id', 'policy_version', 'step'])


def stored(run_dir: Path) -> int:
    from realrl_replay.errors import StoreError
    try:
        return len(store_rows(run_dir)['seq'])
    except StoreError:  # not created yet
        return 0


@pytest.mark.system
def test_graph_trains_restarts_stops_cleanly_and_resumes(tmp_path):
    require_workspace()
    if not (ROOT / '.venv/bin/realrl').exists():
        pytest.skip('run scripts/setup.sh first')
    isolate(next_domain_id())
    run_dir = tmp_path / 'run'

    # The learner's weights paced (weights_max_mbit_s): every version, the resumed one
    # included, still reaches the policy.
    run = Run(['--run-dir', str(run_dir), *FAST, '--set', 'host.cpu_wake_latency_us=50',
               '--set', 'learner.weights_max_mbit_s=20'], tmp_path / 'train1.log')
    try:
        # Transitions reach the store; the learner's weights reach the policy and act.
        assert wait_for(lambda: 'active' in run.text(), 60), run.text()
        # The graph's host section holds for the run (test_cpu_wake_latency: what it does)
        if os.access(CPU_WAKE_LATENCY_FILE, os.W_OK):
            assert 'idle CPUs wake within 50 us' in run.text(), run.text()
            assert CPU_WAKE_LATENCY_FILE in open_files(run.p.pid)
        assert wait_for(lambda: stored(run_dir) > 0, 60), run.text()
        assert wait_for(lambda: store_rows(run_dir)['policy_version'].max() >= 1, 120), run.text()

        # A node killed for real is restarted by the launcher; data keeps flowing.
        ours = shm_files_of(processes_of(run_dir) + [run.p.pid])
        pid = node_pid(run_dir, 'policy_node')
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: '/policy exited with -9; restarting' in run.text(), 15), run.text()
        n = stored(run_dir)
        assert wait_for(lambda: stored(run_dir) > n + 20, 60), run.text() + node_logs(run_dir)
        ours |= shm_files_of(processes_of(run_dir) + [run.p.pid])
    finally:
        code = run.terminate()
    assert code == 130, run.text()
    assert processes_of(run_dir) == [], 'processes left behind'
    summary = json.loads((run_dir / 'summary.json').read_text())
    assert summary['outcome'] == 'interrupted' and summary['policy_version'] >= 1
    assert (run_dir / 'learning_curve.png').stat().st_size > 0
    assert (run_dir / 'checkpoints' / 'latest.pt').exists()
    # Every shared-memory file the run's processes used (the SIGKILLed one's included) is gone
    # or still in use by someone else (port files are shared by all local participants).
    in_use = {Path(u).name for u in files_in_use()}
    leaked = ({p.name for p in fastdds_files()} & ours) - in_use
    assert ours and not leaked, f'shared memory left behind: {sorted(leaked)}'

    first = store_rows(run_dir)
    # Resume: numbering continues, the learner starts from its checkpoint.
    resumed = Run(['--resume', str(run_dir), '--no-stop-at-success'], tmp_path / 'train2.log')

    def resumed_policy_acts():
        versions = store_rows(run_dir)['policy_version'][len(first['seq']):]
        return versions.size > 0 and versions.max() >= summary['policy_version']
    try:
        assert wait_for(lambda: stored(run_dir) > len(first['seq']) + 20, 90), resumed.text()
        assert wait_for(resumed_policy_acts, 60), resumed.text()
        learner_log = run_dir / 'logs' / 'learner.log'
        assert wait_for(lambda: 'resumed from checkpoint' in learner_log.read_text(), 60)
    finally:
        assert resumed.terminate() == 130
    assert processes_of(run_dir) == []
    rows = store_rows(run_dir)
    seq = rows['seq']
    assert np.all(np.diff(seq) > 0), 'a transition was stored twice or out of order'
    new = slice(len(first['seq']), None)
    assert rows['episode_id'][new].min() > first['episode_id'].max()
