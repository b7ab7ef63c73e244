"""The control clock's records: tick times, held ticks, and the scheduling a thread got."""
import os
import threading

import pytest

from realrl_common.scheduling import scheduling_granted, thread_scheduling
from realrl_driver.core.clock_stats import PeriodRecorder, read_held_ticks, read_tick_log


def test_held_ticks_are_logged_apart_from_the_tick_times(tmp_path):
    log = tmp_path / 'ticks.jsonl'
    rec = PeriodRecorder(log_path=str(log))
    for i in range(250):
        rec.record(i * 0.1)
        if i % 10 == 3:
            rec.mark_held()
    rec.flush()
    assert read_tick_log(str(log)) == [i * 0.1 for i in range(250)]
    assert read_held_ticks(str(log)) == [i * 0.1 for i in range(250) if i % 10 == 3]
    assert rec.held == 25


def test_a_log_of_the_older_format_has_no_held_ticks(tmp_path):
    log = tmp_path / 'ticks.jsonl'
    log.write_text('[0.0, 0.1]\n[0.2]\n')
    assert read_tick_log(str(log)) == [0.0, 0.1, 0.2] and read_held_ticks(str(log)) == []


def test_scheduling_is_read_back_per_thread():
    got = {}

    def worker():
        os.setpriority(os.PRIO_PROCESS, 0, 7)  # on Linux: this thread only
        got.update(thread_scheduling())
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    mine = thread_scheduling()
    assert got['tid'] != mine['tid'] and got['nice'] == 7 and got['policy'] == 'SCHED_OTHER'
    assert mine['nice'] != 7
    assert scheduling_granted(0, 7, got) == {'realtime': None, 'nice': True}
    assert scheduling_granted(20, 7, got) == {'realtime': False, 'nice': True}
    assert scheduling_granted(0, -5, got) == {'realtime': None, 'nice': False}


def test_a_real_time_thread_is_read_back_as_sched_fifo():
    got, errors = {}, []

    def worker():
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(3))
        except PermissionError as e:
            errors.append(e)
            return
        got.update(thread_scheduling())
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    if errors:
        pytest.skip(f'SCHED_FIFO not permitted here ({errors[0]})')
    assert got['policy'] == 'SCHED_FIFO' and got['rt_priority'] == 3
    assert scheduling_granted(3, 0, got) == {'realtime': True, 'nice': None}
    assert thread_scheduling()['policy'] == 'SCHED_OTHER'
