"""One rank of the data-parallel tests (test_data_parallel.py): ``rank_main(env, mode,
*args)`` runs in a process of its own (forked from a server that imported torch once) with
torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) in ``env``.

    steps <out_dir> <steps>
        BC runs on fixed batches (batches.pt in out_dir: configs and batches): this rank's
        share of each batch, through DataParallel; writes rank<r>.pt with each run's final
        actor weights.
    train <out_dir> <store> <ckpt_dir> <batch> <until_updates>
        The Trainer with ranks on a replay store: resumes from ckpt_dir, trains in ranked
        rounds up to until_updates, then stops (rank 0 checkpoints); writes rank<r>.pt with
        its weights, updates and sampler streams right after the resume and at the end.
"""
import os
from pathlib import Path

import torch

from realrl_learner.algorithms import algorithm_config
from realrl_learner.algorithms.bc import BC
from realrl_learner.data_parallel import DataParallel, join, leave, ranks_from_env
from realrl_learner.trainer import Trainer, TrainerConfig, sampler_rng_states
from realrl_replay.reader import ReplayReader


def steps(out: Path, count: int) -> None:
    ranks = ranks_from_env()
    join(ranks, cuda=False)
    finals = []
    for run in torch.load(out / 'batches.pt', weights_only=False):
        algo = BC(run['state_dim'], run['act_dim'], run['cfg'], seed=0)
        parallel = DataParallel(algo, ranks)
        parallel.broadcast_from_leader()
        for batch in run['batches'][:count]:
            n = len(batch['obs']) // ranks.world
            algo.update({k: v[ranks.rank * n:(ranks.rank + 1) * n] for k, v in batch.items()})
        finals.append(algo.actor.state_dict())
        parallel.close()
    torch.save(finals, out / f'rank{ranks.rank}.pt')
    leave()


def train(out: Path, store: str, ckpt: str, batch: int, until: int) -> None:
    ranks = ranks_from_env()
    cfg = TrainerConfig(algorithm=algorithm_config({'type': 'sac', 'batch_size': batch,
                                                    'learning_starts': 0}),
                        refresh_every_s=0.0, checkpoint_every_s=1e9, ranks=ranks.world)
    trainer = Trainer(cfg, ReplayReader(store), ckpt, None, ranks)
    trainer.load_latest()
    record = {'resumed_updates': trainer.algorithm.updates,
              'resumed_actor': {k: v.clone() for k, v in trainer.algorithm.actor.state_dict()
                                .items()},
              'resumed_rngs': sampler_rng_states(trainer.sampler)}
    while True:
        stop = ranks.leader and trainer.algorithm.updates >= until
        rngs = sampler_rng_states(trainer.sampler)  # as of the round that checkpoints
        if trainer.ranked_round(0.0, stop=stop)[1]:
            break
    record.update(updates=trainer.algorithm.updates, actor=trainer.algorithm.actor.state_dict(),
                  rngs_at_checkpoint=rngs)
    torch.save(record, out / f'rank{ranks.rank}.pt')
    trainer.close()
    leave()


def rank_main(env: dict, mode: str, *args) -> None:
    """One rank of mode ('steps' or 'train') with torchrun's environment env."""
    os.environ.update(env)
    torch.set_num_threads(1)
    if mode == 'steps':
        steps(Path(args[0]), int(args[1]))
    else:
        train(Path(args[0]), str(args[1]), str(args[2]), int(args[3]), int(args[4]))
