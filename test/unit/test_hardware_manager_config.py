"""The hardware manager in a graph description, and the `realrl robots` table."""
from types import SimpleNamespace

import pytest
import yaml

from realrl_bringup.graph import load_graph
from realrl_bringup.robots_cmd import format_robots
from realrl_common.config import ConfigError


def graph_file(tmp_path, parameters):
    path = tmp_path / 'g.yaml'
    path.write_text(yaml.safe_dump({'name': 'hw', 'nodes': [
        {'name': 'hardware_manager', 'package': 'realrl_hardware',
         'executable': 'hardware_manager', 'parameters': parameters}]}))
    return path


def test_a_graph_may_run_a_hardware_manager(tmp_path):
    graph = load_graph(graph_file(tmp_path, {'expected_robots': ['arm0', 'arm1:mujoco_arm'],
                                             'activate': False}))
    assert graph.nodes[0].fqn == '/hardware_manager' and graph.drivers == []


@pytest.mark.parametrize('parameters, message', [
    ({'expected_robots': ['arm0:']},
     r"expected_robots: 'arm0:' is not 'robot_id' or 'robot_id:kind'"),
    ({'scan_period_s': 0}, r'scan_period_s must be > 0'),
    ({'activate': 'yes'}, r'activate: expected true or false'),
    ({'heartbeat_timeout': 1.0}, r"did you mean 'heartbeat_timeout_s'"),
])
def test_bad_hardware_manager_parameters_are_named(tmp_path, parameters, message):
    with pytest.raises(ConfigError, match=message):
        load_graph(graph_file(tmp_path, parameters))


def robot(**kw):
    base = dict(robot_id='arm0', driver='/arm0/driver', kind='mujoco_arm',
                lifecycle_state='active', lease_holder='', lease_expires_in_s=0.0,
                achieved_hz=9.96, control_hz=10.0, health='ok')
    return SimpleNamespace(**{**base, **kw})


def test_robots_table_has_a_column_each_and_names_undescribed_drivers():
    text = format_robots([
        robot(lease_holder='exp_a', lease_expires_in_s=12.4),
        robot(robot_id='arm9', driver='', kind='', lifecycle_state='missing', achieved_hz=0.0,
              control_hz=0.0, health='expected (expected_robots) but no driver has described it'),
        robot(robot_id='', driver='/arm5/driver', kind='', lifecycle_state='unconfigured',
              achieved_hz=0.0, control_hz=0.0, health='not described yet (unconfigured)'),
    ])
    lines = text.splitlines()
    assert lines[0].split() == ['ROBOT', 'KIND', 'STATE', 'HOLDER', 'RATE', 'HZ', 'HEALTH']
    assert lines[1].split() == ['arm0', 'mujoco_arm', 'active', 'exp_a', '(12s)', '10.0/10', 'ok']
    assert lines[2].split()[:5] == ['arm9', '-', 'missing', '-', '-']
    assert lines[3].startswith('? /arm5/driver')
    assert len({line.index(' KIND') if 'KIND' in line else None for line in lines[:1]}) == 1
    assert all(line.find('  ') > 0 for line in lines)
