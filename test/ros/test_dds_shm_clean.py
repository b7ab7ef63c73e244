"""A SIGKILLed node's Fast DDS segment is removed by clean_dds_shm; a live node's stays.

A participant's segment (``fastdds_<16 hex digits>``, with its ``_el`` lock) is its own;
port files (``fastdds_port<n>``) may be shared by every participant on the host, and stay
while any of them holds one."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ros_env import FASTDDS_TOOL, clean_dds_shm, next_domain_id, wait_for

SHM = Path('/dev/shm')
TALKER = '''
import time, rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node('shm_talker')
pub = node.create_publisher(String, 'shm_chatter', 10)
print('up', flush=True)
while True:
    pub.publish(String(data='x'))
    time.sleep(0.01)
'''


SEGMENT = re.compile(r'fastdds_[0-9a-f]{16}(_el)?$')


def dds_files() -> set[str]:
    return {f.name for f in SHM.glob('fastdds_*')}


def segments(names: set[str]) -> set[str]:
    return {n for n in names if SEGMENT.match(n)}


def start_talker(domain: int) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, '-c', TALKER], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, 'ROS_DOMAIN_ID': str(domain)},
                         start_new_session=True)
    assert p.stdout.readline().strip() == 'up'
    return p


def test_a_killed_nodes_segments_go_and_a_live_ones_stay(ros_domain):
    if not FASTDDS_TOOL.exists():
        pytest.skip(f'{FASTDDS_TOOL} is not installed')
    clean_dds_shm()
    before = dds_files()
    killed, alive = start_talker(ros_domain), None
    try:
        assert wait_for(lambda: segments(dds_files() - before), 20)
        time.sleep(1.0)
        theirs = segments(dds_files() - before)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(10)
        assert theirs <= dds_files()           # SIGKILL left them behind
        alive = start_talker(next_domain_id())   # another domain: none of its ports shared
        assert wait_for(lambda: segments(dds_files() - before) - theirs, 20)
        time.sleep(1.0)
        live = segments(dds_files() - before) - theirs
        report = clean_dds_shm()
        assert 'zombie' in report, report
        assert not theirs & dds_files(), sorted(theirs & dds_files())
        assert live <= dds_files()             # a running node's memory is kept
        assert alive.poll() is None
    finally:
        for p in (killed, alive):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        clean_dds_shm()
