"""The learner's algorithms on a GPU: CNN-SAC and RLPD updates/s at batch 256, and a
VLA-shaped model of >= 400M parameters (the built-in 'vla_tiny' architecture, widened):
action-chunk latency p50/p99 at batch 1 and fine-tuning (behaviour cloning) updates/s at
batch 8.

All on random weights and random batches of the right shapes (84x84 camera frames as
uint8, states, actions), built through the algorithm registry as the learner builds them;
torch's default device is the GPU, so networks and batches live there. Baseline: the same
CNN-SAC update on this machine's CPU, one thread, measured in the same run.

Left out: sampling from the store and the host-to-device copy of each batch (the learner's
loader), and the policy node around the model. Needs PYTHONPATH to reach src/ (the command
below sets it) and no ROS, but the plug-in registrations the build writes (build/<pkg>/
*.egg-info): run `python3 bench/gpu_learners.py` on a GPU machine with those carried.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
for pkg in ('realrl_common', 'realrl_policy', 'realrl_learner'):
    sys.path.insert(0, str(ROOT / 'src' / pkg))
    sys.path.insert(0, str(ROOT / 'build' / pkg))  # its egg-info: the registered plug-ins

from realrl_learner.algorithms import ObservationSpec  # noqa: E402
from realrl_learner.algorithms.bc import BC, BCConfig  # noqa: E402
from realrl_learner.algorithms.rlpd import RLPD, RLPDConfig  # noqa: E402
from realrl_learner.sac import SAC, SACConfig  # noqa: E402
from realrl_policy.actors.vla_tiny import VLATiny, VLATinyConfig  # noqa: E402
from realrl_policy.models import ActorConfig, EncoderConfig  # noqa: E402

STATE, ACT, HW = 14, 7, 84


def image_batch(b: int, device) -> dict:
    return {'state': torch.randn(b, STATE, device=device),
            'image_front': torch.randint(0, 255, (b, HW, HW, 3), dtype=torch.uint8,
                                         device=device)}


def rl_batch(b: int, device) -> dict:
    return {'obs': image_batch(b, device), 'next_obs': image_batch(b, device),
            'action': torch.rand(b, ACT, device=device) * 2 - 1,
            'reward': torch.randn(b, device=device),
            'terminated': torch.zeros(b, device=device)}


def rate(step, seconds: float, sync) -> float:
    """Calls of step per second over ``seconds`` after three warm-ups."""
    for _ in range(3):
        step()
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    sync()
    return n / (time.perf_counter() - t0)


def cnn_actor() -> ActorConfig:
    return ActorConfig(type='cnn', encoder=EncoderConfig(cameras=('front',)))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--smoke', action='store_true', help='tiny sizes on the CPU (a check)')
    p.add_argument('--seconds', type=float, default=10.0)
    args = p.parse_args()
    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        sys.exit('gpu_learners: no CUDA device (run it on a GPU machine, or --smoke)')
    device = torch.device('cuda' if cuda else 'cpu')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    seconds = 1.0 if args.smoke else args.seconds
    batch = 16 if args.smoke else 256
    spec = ObservationSpec(STATE, ('front',), (HW, HW))
    out = {'card': torch.cuda.get_device_name() if cuda else 'cpu (smoke)', 'batch': batch}

    # CPU baseline first (one thread), then the same update on the device.
    torch.set_num_threads(1)
    sac_cpu = SAC(spec, ACT, SACConfig(actor=cnn_actor(), batch_size=batch))
    cpu_batch = rl_batch(batch, 'cpu')
    out['cnn_sac_cpu_updates_per_s'] = round(rate(lambda: sac_cpu.update(cpu_batch),
                                                  seconds, lambda: None), 2)
    torch.set_default_device(device)
    sac = SAC(spec, ACT, SACConfig(actor=cnn_actor(), batch_size=batch))
    b = rl_batch(batch, device)
    out['cnn_sac_updates_per_s'] = round(rate(lambda: sac.update(b), seconds, sync), 2)
    rlpd = RLPD(spec, ACT, RLPDConfig(actor=cnn_actor(), batch_size=batch))
    out['rlpd_updates_per_s'] = round(rate(lambda: rlpd.update(b), seconds, sync), 2)
    print(f'{out["card"]}: CNN-SAC {out["cnn_sac_updates_per_s"]} updates/s (CPU, one thread: '
          f'{out["cnn_sac_cpu_updates_per_s"]}), RLPD {out["rlpd_updates_per_s"]} updates/s '
          f'at batch {batch}, 84x84 frames', flush=True)

    # A VLA-shaped model of >= 400M parameters: vla_tiny's architecture with a wide trunk.
    width, depth = (64, 2) if args.smoke else (8192, 7)
    vcfg = VLATinyConfig(chunk=50, image_shape=(3, 224, 224) if cuda else (3, 32, 32),
                         max_tokens=64, embed_dim=1024 if cuda else 32,
                         hidden_sizes=(width,) * depth, flow_steps=10, head='flow')
    dev = 'cuda' if cuda else 'cpu'  # BCConfig.device places the actor (default: the CPU)
    bc = BC(ObservationSpec(STATE), ACT, BCConfig(actor=vcfg, batch_size=8, lr=1e-5,
                                                  device=dev))
    model: VLATiny = bc.actor
    params = sum(p.numel() for p in model.parameters())
    c, h, w = vcfg.image_shape
    one = {'obs': torch.randn(1, STATE), 'instruction': torch.randint(1, 200, (1, 64)),
           'image': torch.randint(0, 255, (1, c, h, w), dtype=torch.uint8)}
    lat = []
    with torch.no_grad():
        for _ in range(5):
            model.sample(one, deterministic=True)
        sync()
        for _ in range(20 if args.smoke else 200):
            t0 = time.perf_counter()
            model.sample(one, deterministic=True).cpu()
            lat.append((time.perf_counter() - t0) * 1e3)
    lat.sort()
    eight = {'obs': torch.randn(8, STATE), 'instruction': torch.randint(1, 200, (8, 64)),
             'image': torch.randint(0, 255, (8, c, h, w), dtype=torch.uint8),
             'action_chunk': torch.rand(8, vcfg.chunk, ACT) * 2 - 1,
             'action': torch.rand(8, ACT) * 2 - 1}
    out.update(vla_params=params, vla_chunk=vcfg.chunk, vla_flow_steps=vcfg.flow_steps,
               vla_latency_p50_ms=round(statistics.median(lat), 3),
               vla_latency_p99_ms=round(lat[int(0.99 * (len(lat) - 1))], 3),
               vla_finetune_updates_per_s=round(rate(lambda: bc.update(eight), seconds, sync),
                                                2))
    # The large-learner options: bf16 autocast, and bf16 with the vision encoder frozen.
    for key, extra in (('bf16', {}), ('bf16_frozen_vision', {'freeze': ('vision',)})):
        del bc  # one copy of the big model at a time
        torch.manual_seed(0)
        bc = BC(ObservationSpec(STATE), ACT, BCConfig(actor=vcfg, batch_size=8, lr=1e-5,
                                                      precision='bf16', device=dev, **extra))
        out[f'vla_finetune_{key}_updates_per_s'] = round(
            rate(lambda: bc.update(eight), seconds, sync), 2)  # noqa: B023
    print(f'VLA-shaped model, {params / 1e6:.0f}M parameters, chunk {vcfg.chunk}, '
          f'{vcfg.flow_steps} flow steps: latency p50 {out["vla_latency_p50_ms"]} ms, p99 '
          f'{out["vla_latency_p99_ms"]} ms; fine-tuning {out["vla_finetune_updates_per_s"]} '
          f'updates/s at batch 8 (float32); bf16 {out["vla_finetune_bf16_updates_per_s"]}, '
          f'bf16 with the vision encoder frozen '
          f'{out["vla_finetune_bf16_frozen_vision_updates_per_s"]}', flush=True)
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
    main()
