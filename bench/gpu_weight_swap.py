"""Policy inference on a GPU while new weights arrive: step latency p50/p99 with no swaps,
with a plain load_state_dict between steps, and with realrl's double-buffered swap
(realrl_policy/device_swap.py: pinned host memory, a copy stream of its own, the swap at a
step boundary once the copy has completed).

The actor is an MLP of about 100M float32 parameters (400 MB), batch 1, stepped at a fixed
rate (200 Hz) by one thread; a second thread delivers new weights (host tensors, as a
policy has them after unpacking a blob) every 0.5 s. Latency = from a step's scheduled time
to its action on the host, so a step delayed by a transfer counts in full.

The policy node's own path is measured too (``engine`` modes): ``InferenceEngine(device=
'cuda')`` serving a GaussianActor MLP of the same size, new versions arriving as weight blobs
that ``prepare`` unpacks and stages on the weights thread (the node's ``WeightsLoader``), and
the stepping thread swapping each in between two ``act`` calls (the node's executor thread);
``engine_idle`` is the same engine without deliveries.

Figures: `p99_ms_idle`, `p99_ms_plain`, `p99_ms_staged`, `p99_ms_engine_idle`,
`p99_ms_engine` (and p50s), `swaps` per mode, `card`. Baseline: the idle modes, in the same
process on the same card, right before.
Left out: unpacking the blob (CPU work in the weights thread) and the DDS transfer of the
weights (bench/weight_sync*.py).
"""
import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
for _pkg in ('realrl_policy', 'realrl_common'):   # carry build/*/realrl_*.egg-info to a GPU
    sys.path.insert(0, str(ROOT / 'src' / _pkg))   # machine: the engine's actor types
    sys.path.insert(0, str(ROOT / 'build' / _pkg))  # are registered plug-ins
from realrl_policy.device_swap import DoubleBufferedActor  # noqa: E402
from realrl_policy.inference import InferenceEngine  # noqa: E402
from realrl_policy.models import ActorConfig, build_actor  # noqa: E402
from realrl_policy.weights_blob import pack_actor  # noqa: E402

HZ = 200.0


def make_actor(width: int, depth: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    layers, d = [], 64
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, 14))
    return nn.Sequential(*layers)


def paced_steps(step, seconds: float) -> list[float]:
    """Call step() at HZ for seconds; each step's latency from its scheduled time."""
    latencies, period = [], 1.0 / HZ
    next_t = time.perf_counter()
    end = next_t + seconds
    while next_t < end:
        # Sleep to just before the step, then wait out the rest: a node sleeps between
        # steps, and a spinning loop would hold the GIL against the weights thread.
        ahead = next_t - time.perf_counter()
        if ahead > 1e-3:
            time.sleep(ahead - 1e-3)
        while time.perf_counter() < next_t:
            pass
        step()
        latencies.append(time.perf_counter() - next_t)
        next_t += period
    return latencies


def summary(latencies: list[float], swaps: int) -> dict:
    ms = np.asarray(latencies) * 1e3
    return {'p50_ms': round(float(np.median(ms)), 3),
            'p99_ms': round(float(np.percentile(ms, 99)), 3),
            'max_ms': round(float(ms.max()), 3), 'steps': len(ms), 'swaps': swaps}


def run_engine(deliver: bool, device, seconds: float, width: int, depth: int) -> dict:
    """The policy node's path: blobs prepared on a weights thread, swapped between steps."""
    cfg = ActorConfig(hidden_sizes=(width,) * depth)
    blobs = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        blobs.append(pack_actor(build_actor(cfg, 64, 14)))
    engine = InferenceEngine(True, device=str(device))
    engine.add_robot('arm0', 64, -np.ones(14, np.float32), np.ones(14, np.float32))
    assert engine.swap(engine.prepare(1, blobs[0])) == ''
    state = np.random.default_rng(0).standard_normal(64).astype(np.float32)
    ready, lock, stop = [], threading.Lock(), threading.Event()

    def weights_thread():
        version = 1
        while deliver and not stop.wait(0.5):
            version += 1
            # checked: as the node's loader, whose blobs' CRC-32 the chunk assembler checked
            prepared = engine.prepare(version, blobs[1 + version % 2], checked=True)
            assert not isinstance(prepared, str), prepared
            with lock:
                ready[:] = [prepared]

    def step():
        with lock:
            prepared = ready.pop() if ready else None
        if prepared is not None:
            assert engine.swap(prepared) == ''
        engine.act('arm0', state)

    for _ in range(20):
        engine.act('arm0', state)
    t = threading.Thread(target=weights_thread, daemon=True)
    t.start()
    try:
        latencies = paced_steps(step, seconds)
    finally:
        stop.set()
        t.join()
    served = engine.version
    return dict(summary(latencies, engine.swaps - 1), version_served=served)


def run_mode(mode: str, device, seconds: float, width: int, depth: int) -> dict:
    base = make_actor(width, depth, 0)
    updates = [{k: v.clone() for k, v in make_actor(width, depth, s).state_dict().items()}
               for s in (1, 2)]
    lock = threading.Lock()
    plain = base.to(device).eval()
    buffered = DoubleBufferedActor(make_actor(width, depth, 0), device) \
        if mode == 'staged' else None
    pending: list = []
    stop = threading.Event()
    delivered = [0]

    def weights_thread():
        i = 0
        while not stop.wait(0.5):
            sd = updates[i % 2]
            i += 1
            if mode == 'staged':
                buffered.stage(sd, version=i)
            elif mode == 'plain':
                with lock:
                    pending.append(sd)
            delivered[0] += 1

    x = torch.randn(1, 64, device=device)

    def step():
        if mode == 'plain':
            with lock:
                sd = pending.pop() if pending else None
                pending.clear()
            if sd is not None:
                plain.load_state_dict(sd)
            actor = plain
        elif mode == 'staged':
            actor = buffered.active()
        else:
            actor = plain
        actor(x).cpu()

    t = threading.Thread(target=weights_thread, daemon=True)
    with torch.no_grad():
        for _ in range(20):  # warm-up
            plain(x).cpu()
        t.start()
        latencies = paced_steps(step, seconds)
    stop.set()
    t.join()
    exact = None
    if buffered is not None:  # the swapped-in copy holds exactly the staged weights
        buffered.stage(updates[0], version=-1)
        while buffered.active() is None or buffered.pending():
            time.sleep(0.001)
        got = buffered.active().state_dict()
        exact = all(torch.equal(got[k].cpu(), v) for k, v in updates[0].items())
    swaps = buffered.swaps if buffered else delivered[0] if mode == 'plain' else 0
    return dict(summary(latencies, swaps), weights_exact=exact)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--quick', action='store_true')
    p.add_argument('--width', type=int, default=4096)
    p.add_argument('--depth', type=int, default=6)
    p.add_argument('--switch-interval-ms', type=float, default=None,
                   help="the interpreter's thread switch interval (Python's default: 5 ms)")
    p.add_argument('--engine-only', action='store_true', help='only the engine modes')
    args = p.parse_args()
    if args.switch_interval_ms is not None:
        if args.switch_interval_ms <= 0:
            p.error(f'--switch-interval-ms must be > 0, got {args.switch_interval_ms}')
        sys.setswitchinterval(args.switch_interval_ms / 1e3)
    if not torch.cuda.is_available():
        sys.exit('gpu_weight_swap: no CUDA device (run it on a GPU machine)')
    device = torch.device('cuda')
    params = sum(p.numel() for p in make_actor(args.width, args.depth, 0).parameters())
    seconds = 3.0 if args.quick else 10.0
    card = torch.cuda.get_device_name(device)
    result = {'card': card, 'params': params, 'hz': HZ,
              'switch_interval_ms': sys.getswitchinterval() * 1e3}
    for mode in () if args.engine_only else ('idle', 'plain', 'staged', 'idle'):
        r = run_mode(mode, device, seconds, args.width, args.depth)
        key = 'idle_after' if mode == 'idle' and 'idle' in result else mode
        result[key] = r
        print(f'{key:10s} {r}', flush=True)
    for key, deliver in (('engine_idle', False), ('engine', True)):
        result[key] = run_engine(deliver, device, seconds, args.width, args.depth)
        print(f'{key:10s} {result[key]}', flush=True)
    result.update(p99_ms_engine_idle=result['engine_idle']['p99_ms'],
                  p99_ms_engine=result['engine']['p99_ms'])
    if not args.engine_only:
        result.update(p99_ms_idle=result['idle']['p99_ms'],
                      p99_ms_plain=result['plain']['p99_ms'],
                      p99_ms_staged=result['staged']['p99_ms'])
        print(f'{card}, {params / 1e6:.0f}M-parameter actor at {HZ:g} Hz: step p99 '
              f'{result["p99_ms_idle"]} ms without swaps, {result["p99_ms_plain"]} ms with '
              f'load_state_dict, {result["p99_ms_staged"]} ms with the double-buffered swap; '
              f'the policy engine {result["p99_ms_engine_idle"]} ms without deliveries, '
              f'{result["p99_ms_engine"]} ms with ({result["engine"]["swaps"]} versions '
              'swapped in)')
    print(json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
