"""A learner rank other than 0: trains together with rank 0 (the learner node), without ROS.

torchrun starts every rank with the node's command line; ``learner_node.main`` hands the
ranks above 0 to ``run_rank``, which reads the node's parameters file (``--params-file``),
opens the replay store and follows rank 0's rounds (``Trainer.ranked_round``) until rank 0
says stop. SIGINT is ignored: a stopping run stops rank 0, whose last round stops the rest
(after the final checkpoint, which needs every rank).
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

import yaml

from realrl_common.config import build_config
from realrl_learner.data_parallel import Ranks, leave
from realrl_learner.node_config import LearnerNodeConfig
from realrl_learner.trainer import Trainer
from realrl_replay.errors import StoreError
from realrl_replay.reader import ReplayReader

STORE_WAIT_S = 30.0
"""How long a store that exists but cannot be read yet (being created) is waited for."""


def open_store(store_path: str | Path, give_up_at: float) -> ReplayReader | None:
    """The store once the replay node has created it (None before); a store that stays
    unreadable past give_up_at (not one being created) is an error."""
    path = Path(store_path)
    if not (path.exists() and any(path.iterdir())):
        return None
    try:
        return ReplayReader(path)
    except StoreError:
        if time.monotonic() > give_up_at:
            raise
        return None


def params_from_args(argv: list[str]) -> dict:
    """The node's parameters from the --params-file of its ROS arguments (the form realrl
    writes: {<node>: {ros__parameters: {...}}}); {} without one."""
    if '--params-file' not in argv:
        return {}
    path = argv[argv.index('--params-file') + 1]
    doc = yaml.safe_load(Path(path).read_text()) or {}
    for entry in doc.values():
        if isinstance(entry, dict) and 'ros__parameters' in entry:
            return dict(entry['ros__parameters'])
    return {}


def run_rank(argv: list[str], ranks: Ranks) -> int:
    """Train as rank ranks.rank until rank 0 stops; the exit status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cfg = build_config(LearnerNodeConfig, params_from_args(argv),
                       where=f'learner rank {ranks.rank} parameters')
    reader, give_up_at = None, time.monotonic() + STORE_WAIT_S
    while reader is None:  # rank 0 waits the same way; the group meets in Trainer
        reader = open_store(cfg.store_path, give_up_at)
        if reader is None:
            time.sleep(0.5)
    trainer = Trainer(cfg, reader, cfg.checkpoint_dir, None, ranks)
    try:
        trainer.load_latest()
        while True:
            _, stop = trainer.ranked_round(time.monotonic())
            if stop:
                return 0
    finally:
        trainer.close()
        leave()
