"""`realrl train` with a lease section: the run's robots are leased from a hardware manager
before their drivers are activated, nobody else gets them meanwhile, and they are released
when the run stops; without a manager the run says what is missing."""
import re
from pathlib import Path

import pytest
import yaml
from ros_env import ROOT, isolate, next_domain_id, require_workspace, wait_for
from test_reach_graph import FAST, Run, stored

MANAGER = {'name': 'hardware_manager', 'package': 'realrl_hardware',
           'executable': 'hardware_manager', 'restart': 'on_failure',
           'parameters': {'activate': False}}  # the run drives the lifecycles


def leased_graph(tmp_path: Path, with_manager: bool, wait_s: float) -> Path:
    graph = yaml.safe_load((ROOT / 'config' / 'reach_sim.yaml').read_text())
    if with_manager:
        graph['nodes'].insert(0, MANAGER)
    graph['lease'] = {'enabled': True, 'ttl_s': 3.0, 'wait_s': wait_s}
    path = tmp_path / 'leased.yaml'
    path.write_text(yaml.safe_dump(graph))
    return path


@pytest.mark.system
def test_robots_are_leased_for_the_run_and_released_after(tmp_path):
    require_workspace()
    isolate(next_domain_id())
    run_dir = tmp_path / 'run'
    run = Run(['--config', str(leased_graph(tmp_path, True, 20.0)), '--run-dir', str(run_dir),
               *FAST], tmp_path / 'realrl.log')
    try:
        assert wait_for(lambda: '/arm0/driver active' in run.text(), 60), run.text()
        text = run.text()
        # configured, leased, then activated: never commanded before the lease
        assert text.index('/arm0/driver inactive') < text.index('granted') \
            < text.index('/arm0/driver active')
        assert wait_for(lambda: stored(run_dir) > 20, 60), run.text()
        import rclpy

        from realrl_interfaces.srv import AcquireLease
        rclpy.init()
        try:
            probe = rclpy.create_node('intruder')
            client = probe.create_client(AcquireLease, '/hardware_manager/acquire_lease')
            assert client.wait_for_service(timeout_sec=10)
            future = client.call_async(AcquireLease.Request(robot_ids=['arm0'], holder='intruder'))
            rclpy.spin_until_future_complete(probe, future, timeout_sec=10)
            reply = future.result()
            assert (not reply.granted and 'leased by' in reply.message
                    and 'realrl:run:' in reply.message)
            probe.destroy_node()
        finally:
            rclpy.try_shutdown()
    finally:
        code = run.terminate()
    assert code in (0, 130), run.text()
    manager_log = (run_dir / 'logs' / 'hardware_manager.log').read_text(errors='replace')
    assert re.search(r"lease \S+ of 'realrl:run:\d+' was released",
                     manager_log), manager_log[-2000:]


@pytest.mark.system
def test_a_leased_run_without_a_manager_says_what_is_missing(tmp_path):
    require_workspace()
    isolate(next_domain_id())
    run = Run(['--config', str(leased_graph(tmp_path, False, 3.0)), '--run-dir',
               str(tmp_path / 'run'), *FAST], tmp_path / 'realrl.log')
    try:
        assert run.p.wait(90) == 1
    finally:
        run.terminate()
    text = run.text()
    assert "no lease on ['arm0'] from /hardware_manager after 3 s" in text
    assert 'start a hardware manager' in text and '/arm0/driver active' not in text
