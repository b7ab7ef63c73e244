"""The cloud-edge training graph with its link cut for real (the edge's veth set down in its
network namespace) and restored: nothing lost, nothing twice, the robot held while cut,
training going on after. A short version of bench/link_cut.py (which runs 30 s cuts)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ros_env import next_domain_id, require_workspace

from realrl_bridge import wan

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'bench'))


@pytest.mark.ros
@pytest.mark.skipif(bool(wan.available()), reason=wan.available() or 'available')
def test_a_cut_link_loses_and_repeats_no_transition(tmp_path):
    require_workspace()
    import link_cut
    domain = next_domain_id()
    next_domain_id()                        # the edge site's graph uses domain + 1
    result = link_cut.run(tmp_path, cut_s=6.0, before_s=2.0, after_s=5.0, settle_s=8.0,
                          domain=domain, name='rrcutt', subnet='10.213.6')
    report = str(result)
    assert result['checked_seqs'] > 0, report
    assert result['lost'] == 0, report
    assert result['duplicated'] == 0, report
    assert result['steps_during_cut'] == 0, report    # no action from the cloud: it holds
    assert result['rows_after_reconnect'] > 0, report  # stored again after the cut
    assert not wan.WanLink(name='rrcutt').exists()
