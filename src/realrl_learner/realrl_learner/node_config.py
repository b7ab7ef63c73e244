"""The learner node's parameters (no ROS imports: graphs validate them without rclpy)."""
from __future__ import annotations

import sys
from dataclasses import dataclass

from realrl_common.config import check
from realrl_common.plugins import NodeKind
from realrl_common.weights import DEFAULT_CHUNK_BYTES
from realrl_learner.trainer import TrainerConfig


@dataclass(frozen=True)
class LearnerNodeConfig(TrainerConfig):
    """Parameters of the learner node: the trainer's, and where it reads and writes."""

    store_path: str = 'replay'
    """Replay store to learn from (written by the replay node)."""
    checkpoint_dir: str = 'checkpoints'
    """Where checkpoints go; the newest is loaded at start (resume)."""
    metrics_path: str = ''
    """JSON-lines file of training metrics ('' for none)."""
    metrics_every_s: float = 2.0
    """How often a metrics line and a status message are written."""
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    """Size of one weights chunk on the wire."""
    weights_max_mbit_s: float = 0.0
    """The budget of the weights stream (WeightChunks over DDS to the policies and a cloud
    bridge), Mbit/s; 0: unpaced. A version then takes its size / this to go out. In async
    mode a thread of its own sends it while training goes on (a version due meanwhile is
    made once it is out: latest wins); in sync mode the robots wait for it, as they do
    for every version."""
    nice: int = 10
    """Scheduling niceness of the learner process: training is background work and must
    yield the CPU to control loops on the same machine (0: leave as is)."""
    rank_restarts: int = 3
    """With ranks > 1: how often torchrun restarts the ranks' group after one of them died
    (each restart resumes from the latest checkpoint) before the node counts as failed and
    the graph's restart policy applies."""

    def __post_init__(self):
        super().__post_init__()
        check(self.chunk_bytes >= 1024, f'chunk_bytes must be >= 1024, got {self.chunk_bytes}')
        check(self.weights_max_mbit_s >= 0,
              f'weights_max_mbit_s must be >= 0 (0: unpaced), got {self.weights_max_mbit_s}')
        check(self.metrics_every_s > 0, f'metrics_every_s must be > 0, got {self.metrics_every_s}')
        check(0 <= self.nice <= 19, f'nice must be in 0..19, got {self.nice}')
        check(self.rank_restarts >= 0, f'rank_restarts must be >= 0, got {self.rank_restarts}')


def launch_command(cfg: LearnerNodeConfig, command: list[str]) -> list[str]:
    """The learner's command line: as is for one rank; for ranks > 1, torchrun (its elastic
    agent, on this host only) starting ``ranks`` processes of it and restarting them all
    when one dies, up to rank_restarts times."""
    if cfg.ranks <= 1:
        return command
    return [sys.executable, '-m', 'torch.distributed.run', '--standalone',
            f'--nproc-per-node={cfg.ranks}', f'--max-restarts={cfg.rank_restarts}',
            '--no-python', *command]


NODE = NodeKind(role='learner', config=LearnerNodeConfig, launch=launch_command)
