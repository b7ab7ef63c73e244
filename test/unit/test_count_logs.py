"""The driver's count logging through rclpy's real logger (no node, no DDS): a count is
logged when it changed, at most once per period per kind, and one robot warning reason does
not silence another."""
from collections import Counter

import pytest

rclpy_logging = pytest.importorskip('rclpy.logging')

from realrl_driver.core.count_logs import CountLogger  # noqa: E402


class Arm:
    def __init__(self):
        self.counters, self.warnings = Counter(), {}

    def warn(self, reason, message):
        self.counters[reason] += 1
        self.warnings[reason] = message


def test_counts_are_logged_when_they_change_at_most_once_a_period(capfd):
    log = CountLogger(rclpy_logging.get_logger('count_logs_test'), period_s=60.0)
    log.actions({}, 0)  # nothing yet: nothing to say
    log.actions({'stale': 1}, 0)
    log.actions({'stale': 1}, 0)
    log.actions({'stale': 2}, 5)  # changed, but within the period
    err = capfd.readouterr().err
    assert err.count('actions rejected so far') == 1
    assert "by reason: {'stale': 1}; lost before the driver took them: 0" in err

    arm = Arm()
    arm.warn('ik_failed', 'UR arm at sim: no inverse kinematics solution')
    log.robot_warnings(arm)
    arm.warn('ik_jump', 'UR arm at sim: inverse kinematics jumped')
    arm.warn('ik_failed', 'UR arm at sim: no inverse kinematics solution')
    log.robot_warnings(arm)
    log.robot_warnings(arm)
    err = capfd.readouterr().err
    assert err.count('no inverse kinematics solution (1 times)') == 1
    assert err.count('inverse kinematics jumped (1 times)') == 1  # its own throttle
    assert 'solution (2 times)' not in err  # throttled


def test_a_robot_waiting_for_labels_says_so(capfd):
    log = CountLogger(rclpy_logging.get_logger('count_logs_wait'), period_s=60.0)
    log.waiting('action', 'arm0')
    log.waiting('', 'arm0')
    assert 'waiting' not in capfd.readouterr().err
    log.waiting('reward_label', 'arm0')
    log.waiting('reward_label', 'arm0')
    err = capfd.readouterr().err
    assert err.count('waiting for reward labels on /arm0/reward_label') == 1
    assert "with 'arm0' in its robot_ids" in err
