"""Cloud-edge graphs: each node's site, checked without ROS, and one site's nodes chosen."""
from pathlib import Path

import pytest
import yaml

from realrl_bringup.cli import main as realrl_main
from realrl_bringup.graph import build_graph, load_graph
from realrl_common.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CLOUD_EDGE = ROOT / 'config' / 'reach_cloud_edge.yaml'


def test_cloud_edge_graph_splits_into_its_sites():
    graph = load_graph(CLOUD_EDGE, {'run_dir': '/tmp/r'})
    cloud = [n.fqn for n in graph.for_site('cloud').nodes]
    edge = [n.fqn for n in graph.for_site('lab_a').nodes]
    assert cloud == ['/router', '/bridge', '/replay', '/learner', '/policy']
    assert edge == ['/lab_a/bridge', '/reward', '/arm0/driver']
    assert graph.for_site('lab_a').robot_ids() == ['arm0']
    with pytest.raises(ConfigError, match=r"--site 'lab_b': the graph has sites \['cloud', "
                                          r"'lab_a'\]"):
        graph.for_site('lab_b')


def description() -> dict:
    return yaml.safe_load(CLOUD_EDGE.read_text())


@pytest.mark.parametrize('change, message', [
    (lambda d: d['nodes'][2].update(site='moon'),
     r"node replay: site must be one of \['cloud', 'lab_a'\], got 'moon'"),
    (lambda d: d['nodes'][2].pop('site'), r"node replay: site must be one of"),
    (lambda d: d.pop('sites'), r"node router: site 'cloud' but the graph has no sites section"),
    (lambda d: d['sites']['lab_a'].update(connect='tcp/1.2.3.4:7447'),
     r"sites.lab_a: connect must be the router's TLS endpoint"),
    (lambda d: d['sites']['lab_a'].update(connect='tls/10.0.0.1:7447'),
     r"node lab_a.bridge: connect 'tls/127.0.0.1:7447' differs from site 'lab_a'"),
    (lambda d: d['nodes'].pop(5), r"site 'lab_a' has no bridge node"),
    (lambda d: d['nodes'][0]['parameters'].update(sites={}), r'sites is empty'),
])
def test_bad_sites_are_named(change, message):
    d = description()
    change(d)
    with pytest.raises(ConfigError, match=message):
        build_graph(d, {'run_dir': '/tmp/r'})


def test_check_lists_the_nodes_of_a_site(capsys):
    assert realrl_main(['check', '--config', str(CLOUD_EDGE), '--site', 'lab_a']) == 0
    assert "site lab_a: ['lab_a.bridge', 'reward', 'arm0.driver']" in capsys.readouterr().out
    assert realrl_main(['check', '--config', str(CLOUD_EDGE), '--site', 'x']) == 2


EDGE_POLICY = ROOT / 'config' / 'reach_edge_policy.yaml'


def test_an_edge_policy_gets_its_weights_through_both_bridges():
    graph = load_graph(EDGE_POLICY, {'run_dir': '/tmp/r'})
    assert [n.fqn for n in graph.for_site('lab_a').nodes] == [
        '/lab_a/bridge', '/policy', '/reward', '/arm0/driver']
    for side, message in ((4, r"policy at site 'lab_a' learns from the learner at site "
                              r"'cloud', but the bridge of 'lab_a' carries no weights"),
                          (1, r"the bridge of site 'cloud' carries no weights")):
        d = yaml.safe_load(EDGE_POLICY.read_text())
        assert d['nodes'][side]['executable'] == 'bridge'
        d['nodes'][side]['parameters'].pop('weights')
        with pytest.raises(ConfigError, match=message):
            build_graph(d, {'run_dir': '/tmp/r'})
