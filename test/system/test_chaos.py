"""Every kind of node of the demo graph SIGKILLed in turn during training: each comes back,
data flows again after each kill, and no acknowledged transition is lost or doubled."""
import signal
import subprocess
import time

import pytest
from ros_env import ROOT, isolate, next_domain_id, require_workspace, wait_for

from realrl_bringup.chaos import (
    Chaos,
    node_processes,
    run_processes,
    status_lines,
    store_invariants,
)

FAST = ['--set', 'learner.sac.learning_starts=60', '--set', 'learner.publish_every_s=1.0',
        '--set', 'learner.checkpoint_every_s=2.0', '--set', 'driver.control_hz=50.0',
        '--no-stop-at-success', '--status-every-s', '1']
ORDER = ('/replay', '/learner', '/arm0/driver', '/reward')


@pytest.mark.system
def test_each_node_killed_comes_back_and_nothing_acknowledged_is_lost(tmp_path):
    require_workspace()
    if not (ROOT / '.venv/bin/realrl').exists():
        pytest.skip('run scripts/setup.sh first')
    isolate(next_domain_id())
    run_dir, log = tmp_path / 'run', tmp_path / 'train.log'
    with open(log, 'wb') as f:
        p = subprocess.Popen([str(ROOT / '.venv/bin/realrl'), 'train', '--run-dir',
                              str(run_dir), *FAST], stdout=f, stderr=subprocess.STDOUT,
                             cwd=ROOT, start_new_session=True)
    chaos = Chaos(run_dir, log, every_s=1e9)

    def stored() -> int:
        lines = status_lines(log.read_text(errors='replace'))
        return lines[-1].stored if lines else 0

    def updates() -> int:
        lines = status_lines(log.read_text(errors='replace'))
        return lines[-1].updates if lines else 0
    try:
        assert wait_for(lambda: updates() > 0, 120), log.read_text()
        for node in ORDER:
            pids = node_processes(run_dir)
            assert node in pids, f'{node} not running: {sorted(pids)}'
            n, u = stored(), updates()
            chaos.kill(node, pids[node])
            assert wait_for(lambda: f'{node} exited with -9; restarting' in log.read_text(),
                            15), log.read_text()[-3000:]
            # Data flows end to end again, and the learner learns again.
            assert wait_for(lambda: stored() > n + 20 and updates() > u, 90), \
                f'no recovery after killing {node}:\n' + log.read_text()[-4000:]
            time.sleep(1.5)  # the status line after the recovery lands in the log
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            code = p.wait(60)
        finally:
            if p.poll() is None:
                subprocess.run(['kill', '-9', f'-{p.pid}'], check=False)
                p.wait()
    assert code == 130, log.read_text()[-3000:]
    assert run_processes(run_dir) == [], 'node processes outlived realrl'
    chaos.measure()
    assert [k.node for k in chaos.kills] == list(ORDER)
    assert all(k.recovered_s is not None for k in chaos.kills), chaos.kills
    found = store_invariants(run_dir / 'replay')
    assert found['rows'] > 0 and found['lost'] == 0 and found['duplicated'] == 0, found
