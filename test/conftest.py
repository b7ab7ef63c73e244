"""Test set-up shared by all suites.

Pure-Python cores are imported straight from src/<package>/ so unit tests run without a
colcon build, except those that look up what packages register (nodes, robot kinds, actor
types: entry points, whose metadata the build writes; source scripts/env.sh); tests that
start ROS 2 nodes need the built workspace (scripts/setup.sh) and are skipped with a clear
reason without it.
"""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for pkg in sorted((ROOT / 'src').iterdir()):
    if (pkg / 'setup.py').exists() and str(pkg) not in sys.path:
        sys.path.insert(0, str(pkg))

os.environ.setdefault('MUJOCO_GL', 'egl')
sys.path.insert(0, str(Path(__file__).resolve().parent))  # ros_env helpers


@pytest.fixture(scope='session', autouse=True)
def dds_shm_cleaned():
    """What SIGKILLed nodes (crash tests, system tests) leave in /dev/shm goes when the
    session ends (``ros_env.clean_dds_shm``)."""
    yield
    from ros_env import clean_dds_shm
    clean_dds_shm()
