"""The data-parallel learner on the GPUs of one host: behaviour-cloning updates/s of a
VLA-shaped model (the built-in 'vla_tiny' architecture widened to ~470M parameters, as
bench/gpu_learners.py does) at 1, 2 and 4 ranks, one GPU each, and the time to gather and
publish the weights of a >= 1B-parameter model.

Each rank is a process of its own (started here with torchrun's environment: RANK,
WORLD_SIZE, MASTER_ADDR/PORT), trains its own 8 rows of every batch through
``realrl_learner.data_parallel.DataParallel`` (NCCL; gloo with --cpu), the learner's code
path: the global batch grows with the ranks (8 x ranks rows). ``updates_per_s`` is global
updates per second; ``efficiency`` is rows/s at N ranks over N x rows/s at one rank (1.0:
linear). Baseline: one rank, measured in the same run on the same card. Counts above
``torch.cuda.device_count()`` are skipped and said so.

``publish_s``: what rank 0 does to hand out a version: copy the actor's weights into its
pinned CPU shadow (``publish_stall_s``, the only part training waits for; the rest runs in
the learner's publisher thread) and pack them into the weights blob and cut it into
chunks. Left out: sending the chunks over DDS (bench/weight_sync.py measures that), the
store's sampling and the host-to-device copy of each batch; the frames and tokens are
random (the update's cost does not depend on the pixels). Needs PYTHONPATH to reach src/
(set below) and the plug-in registrations the build writes (build/<pkg>/*.egg-info), no
ROS: run `python3 bench/multigpu_learner.py` on a GPU machine with those carried, or
`--cpu` for a smoke check on gloo with tiny sizes.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
for pkg in ('realrl_common', 'realrl_policy', 'realrl_learner', 'realrl_replay'):
    sys.path.insert(0, str(ROOT / 'src' / pkg))
    sys.path.insert(0, str(ROOT / 'build' / pkg))  # its egg-info: the registered plug-ins

from realrl_common.weights import chunk_blob  # noqa: E402
from realrl_learner.algorithms import ObservationSpec  # noqa: E402
from realrl_learner.algorithms.bc import BC, BCConfig  # noqa: E402
from realrl_learner.data_parallel import DataParallel, join, leave, ranks_from_env  # noqa: E402
from realrl_learner.publish_thread import copy_weights, cpu_shadow  # noqa: E402
from realrl_policy.actors.vla_tiny import VLATinyConfig  # noqa: E402
from realrl_policy.weights_blob import pack_actor  # noqa: E402

STATE, ACT, ROWS = 14, 7, 8


def vla_config(cpu: bool, depth: int = 7) -> VLATinyConfig:
    """vla_tiny widened: ~470M parameters at depth 7 (bench/gpu_learners.py's), > 1B at 16."""
    width = 64 if cpu else 8192
    return VLATinyConfig(chunk=50, image_shape=(3, 32, 32) if cpu else (3, 224, 224),
                         max_tokens=64, embed_dim=32 if cpu else 1024,
                         hidden_sizes=(width,) * depth, flow_steps=10, head='flow')


def batch(vcfg: VLATinyConfig, rows: int, device) -> dict:
    c, h, w = vcfg.image_shape
    return {'obs': torch.randn(rows, STATE, device=device),
            'instruction': torch.randint(1, 200, (rows, vcfg.max_tokens), device=device),
            'image': torch.randint(0, 255, (rows, c, h, w), dtype=torch.uint8, device=device),
            'action_chunk': torch.rand(rows, vcfg.chunk, ACT, device=device) * 2 - 1,
            'action': torch.rand(rows, ACT, device=device) * 2 - 1}


def rank_main(seconds: float, cpu: bool, out: Path) -> None:
    """One rank: BC updates on its 8 rows for `seconds`, gradients averaged; rank 0 writes
    the rate. Alone (WORLD_SIZE 1) it is the learner without ranks: no averaging."""
    ranks = ranks_from_env()
    device = 'cpu' if cpu else f'cuda:{ranks.local_rank if ranks else 0}'
    torch.set_num_threads(1)
    vcfg = vla_config(cpu)
    bc = BC(ObservationSpec(STATE), ACT, BCConfig(actor=vcfg, batch_size=ROWS, lr=1e-5,
                                                  device=device), seed=0)
    parallel = None
    if ranks is not None:
        join(ranks, cuda=not cpu)
        parallel = DataParallel(bc, ranks, device)
        parallel.broadcast_from_leader()
    mine = batch(vcfg, ROWS, device)
    sync = (lambda: None) if cpu else torch.cuda.synchronize
    for _ in range(3):
        bc.update(mine)
    sync()
    n, t0 = 0, time.perf_counter()
    while True:
        going = int(time.perf_counter() - t0 < seconds)
        if not (parallel.agree([going])[0] if parallel else going):  # rank 0's clock
            break
        bc.update(mine)
        n += 1
    sync()
    if ranks is None or ranks.leader:
        out.write_text(json.dumps({'updates_per_s': n / (time.perf_counter() - t0)}))
    if parallel is not None:
        parallel.close()
        leave()


def run_ranks(count: int, seconds: float, cpu: bool) -> float:
    """updates/s of count ranks (processes of this file)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    out = Path(f'/tmp/multigpu_learner_{os.getpid()}_{count}.json')
    procs = [subprocess.Popen(
        [sys.executable, __file__, '--rank', '--seconds', str(seconds), '--out', str(out)]
        + (['--cpu'] if cpu else []),
        env=dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(count),
                 MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), OMP_NUM_THREADS='1'))
        for r in range(count)]
    try:
        codes = [p.wait(timeout=seconds + 600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if any(codes):
        sys.exit(f'multigpu_learner: a rank of {count} exited {codes}')
    rate = json.loads(out.read_text())['updates_per_s']
    out.unlink()
    return rate


def publish_time(cpu: bool) -> dict:
    """Rank 0's publication of a >= 1B-parameter actor (tiny with --cpu): medians of 3."""
    device = 'cpu' if cpu else 'cuda'
    vcfg = vla_config(cpu, depth=16)
    torch.manual_seed(0)
    actor = BC(ObservationSpec(STATE), ACT, BCConfig(actor=vcfg, device=device)).actor
    shadow = cpu_shadow(actor)
    stall, total = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        copy_weights(shadow, actor)
        t1 = time.perf_counter()
        chunks = list(chunk_blob(1, pack_actor(shadow), 1 << 20))
        total.append(time.perf_counter() - t0)
        stall.append(t1 - t0)
    return {'publish_params': sum(p.numel() for p in actor.parameters()),
            'publish_s': round(statistics.median(total), 3),
            'publish_stall_s': round(statistics.median(stall), 3),
            'publish_chunks': len(chunks)}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--cpu', action='store_true', help='gloo on the CPU, tiny sizes (a check)')
    p.add_argument('--seconds', type=float, default=10.0)
    p.add_argument('--counts', default='1,2,4', help='rank counts to measure')
    p.add_argument('--rank', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--out', type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rank:
        return rank_main(args.seconds, args.cpu, args.out)
    if not args.cpu and not torch.cuda.is_available():
        sys.exit('multigpu_learner: no CUDA device (run it on a GPU machine, or --cpu)')
    have = os.cpu_count() if args.cpu else torch.cuda.device_count()
    counts = [int(c) for c in args.counts.split(',')]
    skipped = [c for c in counts if c > have]
    if skipped:
        print(f'skipped {skipped} ranks: {have} {"cores" if args.cpu else "GPUs"} here',
              flush=True)
    card = 'cpu (gloo smoke)' if args.cpu else torch.cuda.get_device_name()
    seconds = 2.0 if args.cpu else args.seconds
    rows = []
    for count in (c for c in counts if c <= have):
        rate = run_ranks(count, seconds, args.cpu)
        base = rows[0]['updates_per_s'] if rows else rate
        rows.append({'gpus': count, 'updates_per_s': round(rate, 3),
                     'efficiency': round(rate / base, 3)})
        print(f'{count} rank(s): {rate:.2f} updates/s of {ROWS * count} rows, efficiency '
              f'{rows[-1]["efficiency"]} (1 rank: {base:.2f})', flush=True)
    publish = publish_time(args.cpu)
    print(f'publish {publish["publish_params"] / 1e9:.2f}B parameters: {publish["publish_s"]} s '
          f'(training waits {publish["publish_stall_s"]} s of it)', flush=True)
    out = {'card': card, 'per_rank_rows': ROWS, 'gpus': [r['gpus'] for r in rows],
           'updates_per_s': [r['updates_per_s'] for r in rows],
           'efficiency': [r['efficiency'] for r in rows], 'skipped_gpus': skipped, **publish}
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
    main()
