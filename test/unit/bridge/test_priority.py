"""A bridge process's niceness reaches every thread: those running and those started later."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from realrl_common.scheduling import set_process_nice

CHILD = r'''
import json, os, threading
from realrl_common.scheduling import set_process_nice
stop = threading.Event()
before = threading.Thread(target=stop.wait); before.start()   # like DDS's threads
refused = set_process_nice(int(os.environ['NICE']))
after = threading.Thread(target=stop.wait); after.start()     # like Zenoh's, started later
nice = {name: os.getpriority(os.PRIO_PROCESS, t.native_id)
        for name, t in (('main', threading.main_thread()), ('before', before), ('after', after))}
stop.set()
print(json.dumps({'refused': refused, 'nice': nice}))
'''


def run_child(nice: int) -> dict:
    out = subprocess.run([sys.executable, '-c', CHILD], capture_output=True, text=True,
                         env={**os.environ, 'NICE': str(nice)}, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_every_thread_gets_the_niceness():
    got = run_child(19)   # lowering priority needs no privilege
    assert got['refused'] == ''
    assert got['nice'] == {'main': 19, 'before': 19, 'after': 19}


def test_zero_leaves_the_process_alone_and_bad_values_are_refused():
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert run_child(0)['nice'] == {'main': mine, 'before': mine, 'after': mine}
    with pytest.raises(ValueError, match='nice must be in -20..19'):
        set_process_nice(20)
