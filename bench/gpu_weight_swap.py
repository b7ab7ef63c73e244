"""Policy inference on a GPU while new weights arrive: step latency p50/p99 with no swaps,
with a plain load_state_dict between steps, and with realrl's double-buffered swap
(realrl_policy/device_swap.py: pinned host memory, a copy stream of its own, the swap at a
step boundary once the copy has completed).

The actor is an MLP of about 100M float32 parameters (400 MB), batch 1, stepped at a fixed
rate (200 Hz) by one thread; a second thread delivers new weights (host tensors, as a
policy has them after unpacking a blob) every 0.5 s. Latency = from a step's scheduled time
to its action on the host, so a step delayed by a transfer counts in full.

Figures: `p99_ms_idle`, `p99_ms_plain`, `p99_ms_staged` (and p50s), `swaps` per mode,
`card`. Baseline: the idle mode, in the same process on the same card, right before.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'src' / 'realrl_policy'))
from realrl_policy.device_swap import DoubleBufferedActor  # noqa: E402

HZ = 200.0


def make_actor(width: int, depth: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    layers, d = [], 64
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, 14))
    return nn.Sequential(*layers)


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
    latencies = []
    t = threading.Thread(target=weights_thread, daemon=True)
    with torch.no_grad():
        for _ in range(20):  # warm-up
            plain(x).cpu()
        t.start()
        period = 1.0 / HZ
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
            latencies.append(time.perf_counter() - next_t)
            next_t += period
    stop.set()
    t.join()
    exact = None
    if buffered is not None:  # the swapped-in copy holds exactly the staged weights
        buffered.stage(updates[0], version=-1)
        while buffered.active() is None or buffered.pending():
            time.sleep(0.001)
        got = buffered.active().state_dict()
        exact = all(torch.equal(got[k].cpu(), v) for k, v in updates[0].items())
    ms = np.asarray(latencies) * 1e3
    return {'p50_ms': round(float(np.median(ms)), 3),
            'p99_ms': round(float(np.percentile(ms, 99)), 3),
            'max_ms': round(float(ms.max()), 3), 'steps': len(ms),
            'swaps': buffered.swaps if buffered else delivered[0] if mode == 'plain' else 0,
            'weights_exact': exact}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--quick', action='store_true')
    p.add_argument('--width', type=int, default=4096)
    p.add_argument('--depth', type=int, default=6)
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit('gpu_weight_swap: no CUDA device (run it on a GPU machine)')
    device = torch.device('cuda')
    params = sum(p.numel() for p in make_actor(args.width, args.depth, 0).parameters())
    seconds = 3.0 if args.quick else 10.0
    card = torch.cuda.get_device_name(device)
    result = {'card': card, 'params': params, 'hz': HZ}
    for mode in ('idle', 'plain', 'staged', 'idle'):
        r = run_mode(mode, device, seconds, args.width, args.depth)
        key = 'idle_after' if mode == 'idle' and 'idle' in result else mode
        result[key] = r
        print(f'{key:10s} {r}', flush=True)
    result.update(p99_ms_idle=result['idle']['p99_ms'], p99_ms_plain=result['plain']['p99_ms'],
                  p99_ms_staged=result['staged']['p99_ms'])
    print(f'{card}, {params / 1e6:.0f}M-parameter actor at {HZ:g} Hz: step p99 '
          f'{result["p99_ms_idle"]} ms without swaps, {result["p99_ms_plain"]} ms with '
          f'load_state_dict, {result["p99_ms_staged"]} ms with the double-buffered swap')
    print(json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
