"""`realrl train` SIGKILLed: none of its nodes (nor anything they started) outlives it."""
import os
import signal

import pytest
from ros_env import ROOT, isolate, next_domain_id, require_workspace, wait_for
from test_reach_graph import FAST, Run, processes_of


@pytest.mark.system
def test_no_node_outlives_a_sigkilled_launcher(tmp_path):
    require_workspace()
    if not (ROOT / '.venv/bin/realrl').exists():
        pytest.skip('run scripts/setup.sh first')
    isolate(next_domain_id())
    run_dir = tmp_path / 'run'
    run = Run(['--run-dir', str(run_dir), *FAST], tmp_path / 'train.log')
    try:
        assert wait_for(lambda: 'active' in run.text(), 90), run.text()
        nodes = processes_of(run_dir)
        assert len(nodes) >= 5, run.text()
        os.kill(run.p.pid, signal.SIGKILL)  # no handler, no stop_all: only the guard is left
        assert run.p.wait(10) == -signal.SIGKILL
        assert wait_for(lambda: processes_of(run_dir) == [], 30), \
            f'still running after the launcher was killed: {processes_of(run_dir)}'
        assert 'orphan guard: the launcher is gone' in run.text()
    finally:
        for pid in processes_of(run_dir):
            os.kill(pid, signal.SIGKILL)
        run.terminate()
