"""The control path's scheduling: the policy, reward and replay nodes and the hardware
manager may run their executor thread SCHED_FIFO (``realtime_priority``), always below
every driver they serve, checked when the graph is read (no ROS); and what a thread asked
for is read back, granted or not."""
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from realrl_bringup.graph import load_graph
from realrl_bringup.graph_checks import check_priorities
from realrl_common.config import ConfigError
from realrl_common.scheduling import (
    run_this_thread_realtime,
    serve_realtime,
    thread_scheduling,
)

ROOT = Path(__file__).resolve().parents[2]
MULTI = ROOT / 'config' / 'multi_arm_sim.yaml'
DEMO = ROOT / 'config' / 'reach_sim.yaml'


def test_the_multi_arm_graph_serves_below_its_drivers():
    graph = load_graph(MULTI, {'run_dir': '/r'})
    rt = {n.fqn: n.parameters.get('realtime_priority') for n in graph.nodes}
    assert rt['/policy'] == rt['/reward'] == 10 and rt['/replay'] == 5
    assert {v for k, v in rt.items() if k.endswith('/driver')} == {20}


@pytest.mark.parametrize('config, override, message', [
    (MULTI, 'policy.realtime_priority=20',
     r'node /policy parameters: realtime_priority 20 is not below the control thread of '
     r'/panda0/driver \(20\).*set realtime_priority below 20, e.g. 10'),
    (MULTI, 'ur5e1/driver.realtime_priority=8',
     r'node /reward parameters: realtime_priority 10 is not below the control thread of '
     r'/ur5e1/driver \(8\); .*set realtime_priority below 8, e.g. 4'),
    (DEMO, 'policy.realtime_priority=5',
     r'/arm0/driver \(normal scheduling\).*Give the drivers a higher realtime_priority, or '
     r'set realtime_priority: 0 here'),
    (MULTI, 'replay.realtime_priority=25',
     r'node /replay parameters: realtime_priority 25 is not below the control thread of '
     r'/panda0/driver \(20\), /panda1/driver \(20\), /ur5e0/driver \(20\), /ur5e1/driver'),
    (MULTI, 'reward.realtime_priority=100',
     r'/reward parameters: realtime_priority must be in 0..99 \(0: off\), got 100'),
    (MULTI, 'policy.realtime_priority=-1', r'realtime_priority must be in 0..99'),
])
def test_a_serving_priority_at_or_above_a_driver_is_refused(config, override, message):
    with pytest.raises(ConfigError, match=message):
        load_graph(config, {'run_dir': '/r'}, [override])


def test_no_serving_priority_leaves_any_driver_scheduling_valid():
    load_graph(DEMO, {'run_dir': '/r'}, ['policy.realtime_priority=0'])
    load_graph(MULTI, {'run_dir': '/r'}, ['policy.realtime_priority=0',
                                          'reward.realtime_priority=19'])


class Log:
    def __init__(self):
        self.lines = []

    def info(self, line):
        self.lines.append(('info', line))

    def warning(self, line):
        self.lines.append(('warning', line))


def test_serving_thread_reports_what_the_kernel_gave_it_and_only_it_changes():
    before = thread_scheduling()
    log, seen = Log(), {}

    def serve():
        seen['granted'] = serve_realtime(log, 3)
        seen['got'] = thread_scheduling()

    t = threading.Thread(target=serve)
    t.start()
    t.join()
    assert thread_scheduling() == before  # Linux schedules per thread
    (level, line), = log.lines
    if (seen['got']['policy'], seen['got']['rt_priority']) == ('SCHED_FIFO', 3):  # granted
        assert seen['granted'] and level == 'info'
        assert line.endswith('SCHED_FIFO priority 3 (asked realtime_priority 3)')
    else:  # refused: said so, with what it runs at instead
        assert not seen['granted'] and level == 'warning'
        assert f'{seen["got"]["policy"]} priority {seen["got"]["rt_priority"]}' in line
        assert 'NOT granted' in line


def test_nothing_asked_changes_nothing_and_bad_priorities_are_refused():
    log = Log()
    assert serve_realtime(log, 0) and log.lines == []
    assert run_this_thread_realtime(0) == ''
    with pytest.raises(ValueError, match=r'realtime_priority must be in 0..99 \(0: off\), '
                                         r'got 100'):
        run_this_thread_realtime(100)


def test_a_node_without_robot_ids_is_held_below_every_driver():
    drivers = {'/a/driver': SimpleNamespace(robot_id='a', realtime_priority=30),
               '/b/driver': SimpleNamespace(robot_id='b', realtime_priority=8)}
    manager = SimpleNamespace(realtime_priority=10, expected_robots=('a', 'b'))
    with pytest.raises(ConfigError, match=r'node /hardware_manager parameters: '
                                          r'realtime_priority 10 is not below the control '
                                          r'thread of /b/driver \(8\);.*below 8, e.g. 4'):
        check_priorities({**drivers, '/hardware_manager': manager})
    check_priorities({**drivers, '/hardware_manager': SimpleNamespace(realtime_priority=7)})
    # a policy serving only robot a may sit above b's driver
    check_priorities({**drivers, '/policy': SimpleNamespace(realtime_priority=10,
                                                            robot_ids=('a',))})
