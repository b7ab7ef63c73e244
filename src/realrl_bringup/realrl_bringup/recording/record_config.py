"""What ``realrl record`` (or a recorder node of a graph) records, and where (no ROS imports)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from realrl_common.config import check
from realrl_common.plugins import NodeKind


@dataclass(frozen=True)
class RecordConfig:
    """A recording: its file, its topics, how long."""

    out: str
    """The MCAP file to write (its folder is created)."""
    topics: tuple[str, ...] = ()
    """Absolute topic names to record; empty: every topic (but /rosout, /parameter_events)."""
    duration_s: float = 0.0
    """Stop after this many seconds; 0: at SIGINT or SIGTERM."""
    depth: int = 1000
    """Queue depth of each subscription."""
    discovery_period_s: float = 0.5
    """How often new topics are looked for."""

    def __post_init__(self):
        check(self.out.endswith('.mcap'), f'out must name a .mcap file, got {self.out!r}')
        check(self.duration_s >= 0, f'duration_s must be >= 0 (0: until stopped), got '
                                    f'{self.duration_s}')
        for t in self.topics:
            check(t.startswith('/'), f'topics: {t!r} must be absolute (start with /)')
        check(self.depth >= 1, f'depth must be >= 1, got {self.depth}')
        check(self.discovery_period_s > 0, 'discovery_period_s must be > 0')


def unused_path(out: str | Path) -> Path:
    """``out``, or if that exists the first ``<stem>-<n><suffix>`` (n = 2, 3, ...) that does
    not: a recording already made is never overwritten."""
    out = Path(out)
    n = 1
    path = out
    while path.exists():
        n += 1
        path = out.with_name(f'{out.stem}-{n}{out.suffix}')
    return path


def add_record_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``realrl record`` / ``record_node``."""
    p.add_argument('out', help='MCAP file to write, e.g. runs/x/episodes.mcap')
    p.add_argument('--topic', action='append', default=[], dest='topics',
                   help='absolute topic to record (repeat; default: all)')
    p.add_argument('--duration-s', type=float, default=0.0,
                   help='stop after this many seconds (default: at Ctrl-C)')


def config_from_args(args) -> RecordConfig:
    """The RecordConfig of parsed ``add_record_arguments`` options."""
    return RecordConfig(out=args.out, topics=tuple(args.topics), duration_s=args.duration_s)


def parse_record_args(argv) -> RecordConfig:
    """The RecordConfig of a command line (``--ros-args`` and after are left out)."""
    if '--ros-args' in argv:
        argv = argv[:argv.index('--ros-args')]
    p = argparse.ArgumentParser(prog='record_node')
    add_record_arguments(p)
    return config_from_args(p.parse_args(argv))


NODE = NodeKind(role='recorder', config=RecordConfig)
"""``record_node`` in a graph: its parameters are a RecordConfig (``out`` required)."""
