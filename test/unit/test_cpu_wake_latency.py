"""A run's hold on the CPU wake-up latency (host.cpu_wake_latency_us): the kernel applies it
while the file is open and drops it when its holder closes it or is killed."""
import os
import signal
import subprocess
import sys

import pytest

from realrl_bringup.run import hold_wake_latency
from realrl_common.scheduling import CPU_WAKE_LATENCY_FILE, CpuWakeLatency, cpu_wake_latency_now

needs_pm_qos = pytest.mark.skipif(not os.access(CPU_WAKE_LATENCY_FILE, os.W_OK),
                                  reason=f'{CPU_WAKE_LATENCY_FILE} is not writable here (root)')


@needs_pm_qos
def test_the_kernel_applies_a_held_limit_until_it_is_closed():
    before = cpu_wake_latency_now()
    held = CpuWakeLatency(7)
    try:
        assert held.held and held.refused == ''
        assert cpu_wake_latency_now() == min(before, 7)
    finally:
        held.close()
    assert not held.held and cpu_wake_latency_now() == before
    held.close()   # twice is harmless


@needs_pm_qos
def test_a_killed_holder_releases_it():
    before = cpu_wake_latency_now()
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time; from realrl_common.scheduling import '
         'CpuWakeLatency; h = CpuWakeLatency(3); print(h.refused or "held", flush=True); '
         'time.sleep(600)'], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        assert cpu_wake_latency_now() == min(before, 3)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    assert cpu_wake_latency_now() == before


def test_a_refusal_says_what_is_missing_and_holds_nothing(tmp_path):
    held = CpuWakeLatency(0, path=str(tmp_path / 'no_pm_qos'))
    assert not held.held
    assert 'no_pm_qos' in held.refused and 'needs root' in held.refused
    with pytest.raises(ValueError, match='cpu_wake_latency_us must be >= 0'):
        CpuWakeLatency(-1)


def test_a_run_holds_only_what_its_graph_asks(capsys):
    assert hold_wake_latency(None) is None
    held = hold_wake_latency(11)
    try:
        out = capsys.readouterr()
        if os.access(CPU_WAKE_LATENCY_FILE, os.W_OK):
            assert held.held and 'idle CPUs wake within 11 us' in out.out
        else:
            assert not held.held and 'host.cpu_wake_latency_us: cannot hold' in out.err
    finally:
        held.close()
