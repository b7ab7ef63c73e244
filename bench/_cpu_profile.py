"""Run a Python script under cProfile with the main thread's CPU time as the clock.

    python bench/_cpu_profile.py OUT.prof SCRIPT [ARGS...]

Wall-clock profiles on a machine shared with other work mostly measure waiting for a core;
``time.thread_time`` counts only what the profiled (main) thread ran. The writer's threads
(encoding, writing) are not in it. Used by bench/_ingest_e2e.py when REALRL_BENCH_PROFILE
names a folder.
"""
from __future__ import annotations

import cProfile
import runpy
import sys
import time


def main() -> None:
    out, script = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[2:]
    profile = cProfile.Profile(time.thread_time)
    try:
        profile.runcall(runpy.run_path, script, run_name='__main__')
    finally:
        profile.dump_stats(out)


if __name__ == '__main__':
    main()
