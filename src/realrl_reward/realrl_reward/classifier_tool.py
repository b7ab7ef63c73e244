"""Record labelled success/failure frames and train the success classifier on them.

    python -m realrl_reward.classifier_tool record-sim --episodes 60 --out frames.npz
        [--cameras front,wrist] [--image-size 84 84] [--seed 200000]
    python -m realrl_reward.classifier_tool record-store --store DIR --out frames.npz
        [--cameras front,wrist]
    python -m realrl_reward.classifier_tool train --frames frames.npz --out classifier.pt
        [--heldout 0.25] [--epochs 12] [--seed 0]

``record-sim`` runs the peg-insertion simulation (``mujoco_peg``) with the scripted expert
in three variants, by episode: clean, with action noise, and aiming beside the hole (the
peg lands on the block: near misses). After a success the peg is jiggled for a few steps,
some of which pull it out. Every frame is labelled by the simulation (peg inserted to
depth or not). ``record-store`` takes the frames of a run's store (e.g. teleop sessions,
or a driver with ``reward_source: env``): each transition's next frames, labelled by its
``terminated`` (a success ended the episode). ``train`` holds out whole episodes, trains on
the rest and prints one JSON line: held-out accuracy, the majority-class baseline (always
guessing the commoner class) and the counts.

A frames file is an npz: ``images_<camera>`` (N, H, W, 3) uint8, ``labels`` (N,) bool,
``groups`` (N,) int (the episode of each frame: held-out splits keep episodes whole).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

JIGGLE_STEPS = 12
"""Steps of random motion recorded after a success."""


@dataclass
class FrameSet:
    """Labelled frames of one or more cameras."""

    images: dict[str, np.ndarray]
    """camera -> (N, H, W, 3) uint8."""
    labels: np.ndarray
    """(N,) bool: success."""
    groups: np.ndarray
    """(N,) int: the episode each frame comes from."""

    def stacked(self, cameras: tuple[str, ...]) -> np.ndarray:
        """Frames of the cameras concatenated along channels: (N, H, W, 3 * len)."""
        missing = [c for c in cameras if c not in self.images]
        if missing:
            raise ValueError(f'cameras {missing} are not in the frames; they have '
                             f'{sorted(self.images)}')
        return np.concatenate([self.images[c] for c in cameras], axis=-1)

    def save(self, path: str | Path) -> None:
        """Write the frames file."""
        np.savez(path, labels=self.labels, groups=self.groups,
                 **{f'images_{c}': v for c, v in self.images.items()})

    @classmethod
    def load(cls, path: str | Path) -> FrameSet:
        """Read a frames file; ValueError naming what is missing."""
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        images = {k[len('images_'):]: v for k, v in data.items() if k.startswith('images_')}
        if 'labels' not in data or 'groups' not in data or not images:
            raise ValueError(f'{path}: not a frames file (needs images_<camera>, labels, '
                             f'groups; has {sorted(data)})')
        return cls(images, data['labels'].astype(bool), data['groups'].astype(np.int64))


# --------------------------------------------------------------------------- recording
def record_sim(episodes: int, cameras: tuple[str, ...] = ('front', 'wrist'),
               image_size: tuple[int, int] = (84, 84), seed: int = 200_000,
               max_steps: int = 30) -> FrameSet:
    """Frames of `episodes` scripted peg-insertion episodes (seeds seed, seed+1, ...),
    labelled by the simulation."""
    from realrl_driver.robots.mujoco_arm.peg_expert import PegExpert
    from realrl_driver.robots.mujoco_arm.peg_task import PegInsertionSim, PegTaskConfig
    sim = PegInsertionSim(PegTaskConfig(), control_hz=10.0, seed=seed)
    rng = np.random.default_rng(seed)
    h, w = image_size
    frames = {c: [] for c in cameras}
    labels, groups = [], []

    def keep(episode: int) -> None:
        for c in cameras:
            frames[c].append(sim.render(c, w, h))
        labels.append(sim.inserted())
        groups.append(episode)

    try:
        for e in range(episodes):
            variant = e % 3
            aim = (0.0, 0.0)
            if variant == 2:  # a near miss: the peg lands on the block beside the hole
                angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0.02, 0.045)
                aim = (dist * np.cos(angle), dist * np.sin(angle))
            expert = PegExpert(sim, noise=0.3 if variant == 1 else 0.0, aim_offset_m=aim,
                               seed=seed + e)
            sim.reset(seed + e)
            keep(e)
            for _ in range(max_steps):
                sim.apply(expert.act())
                keep(e)
                if sim.inserted():
                    break
            if sim.inserted():
                for _ in range(JIGGLE_STEPS):
                    sim.apply(np.clip(rng.normal((0, 0, -0.3), (0.15, 0.15, 0.6)), -1, 1))
                    keep(e)
    finally:
        sim.close()
    return FrameSet({c: np.stack(v) for c, v in frames.items()}, np.asarray(labels, bool),
                    np.asarray(groups, np.int64))


def record_store(store: str | Path, cameras: tuple[str, ...]) -> FrameSet:
    """Frames of a run's store: each transition's next frames, labelled by terminated."""
    from realrl_replay.reader import ReplayReader
    reader = ReplayReader(store)
    fields = [f'next_obs/image_{c}' for c in cameras]
    missing = [f for f in fields if f not in reader.schema.by_name]
    if missing:
        raise ValueError(f'{store}: no fields {missing}; it has '
                         f'{sorted(f.name for f in reader.schema.public)}')
    idx = np.arange(reader.first, reader.count)
    idx = idx[reader.valid(idx)]
    rows = reader.read(idx, fields + ['terminated', 'episode_id'])
    return FrameSet({c: rows[f'next_obs/image_{c}'] for c in cameras},
                    rows['terminated'].astype(bool), rows['episode_id'].astype(np.int64))


# ---------------------------------------------------------------------------- training
def split_groups(groups: np.ndarray, heldout: float, seed: int) -> np.ndarray:
    """Mask of the held-out frames: a `heldout` share of the episodes, whole."""
    if not 0 < heldout < 1:
        raise ValueError(f'heldout must be in (0, 1), got {heldout}')
    unique = np.unique(groups)
    if len(unique) < 2:
        raise ValueError(f'need frames of at least 2 episodes to hold some out, got {len(unique)}')
    n = min(len(unique) - 1, max(1, round(heldout * len(unique))))
    chosen = np.random.default_rng(seed).choice(unique, n, replace=False)
    return np.isin(groups, chosen)


def train_and_evaluate(frames: FrameSet, out: str | Path, cameras: tuple[str, ...],
                       heldout: float = 0.25, train_cfg=None) -> dict:
    """Train on the frames outside the held-out episodes, save the weights at out, and
    return the held-out accuracy with the majority-class baseline and the counts."""
    from realrl_reward import classifier_net
    train_cfg = train_cfg or classifier_net.TrainConfig()
    x = frames.stacked(cameras)
    test = split_groups(frames.groups, heldout, train_cfg.seed)
    start = time.perf_counter()
    net = classifier_net.train(x[~test], frames.labels[~test], len(cameras), train_cfg)
    train_s = time.perf_counter() - start
    prob = classifier_net.success_probability(net, x[test])
    truth = frames.labels[test]
    accuracy = float(np.mean((prob >= 0.5) == truth))
    majority = float(max(truth.mean(), 1 - truth.mean()))
    report = {'heldout_accuracy': accuracy, 'majority_accuracy': majority,
              'train_frames': int((~test).sum()), 'heldout_frames': int(test.sum()),
              'heldout_successes': int(truth.sum()),
              'heldout_episodes': int(len(np.unique(frames.groups[test]))),
              'train_s': round(train_s, 2), 'cameras': list(cameras)}
    classifier_net.save(out, net, cameras, tuple(x.shape[1:3]), report)
    return report


# --------------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    """Command line of the classifier tool; returns the exit status."""
    ap = argparse.ArgumentParser(prog='python -m realrl_reward.classifier_tool',
                                 description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='command', required=True)
    sim = sub.add_parser('record-sim', help='frames of the scripted peg-insertion expert')
    sim.add_argument('--episodes', type=int, required=True)
    sim.add_argument('--image-size', type=int, nargs=2, default=(84, 84), metavar=('H', 'W'))
    sim.add_argument('--seed', type=int, default=200_000)
    store = sub.add_parser('record-store', help="frames of a run's store")
    store.add_argument('--store', required=True)
    for p in (sim, store):
        p.add_argument('--out', required=True, help='frames file (.npz) to write')
        p.add_argument('--cameras', default='front,wrist')
    tr = sub.add_parser('train', help='train and report held-out accuracy')
    tr.add_argument('--frames', required=True)
    tr.add_argument('--out', required=True, help='weights file to write')
    tr.add_argument('--cameras', default='', help='default: every camera of the frames')
    tr.add_argument('--heldout', type=float, default=0.25, help='share of episodes held out')
    tr.add_argument('--epochs', type=int, default=12)
    tr.add_argument('--seed', type=int, default=0)
    args = ap.parse_args(argv)
    try:
        if args.command == 'train':
            from realrl_reward.classifier_net import TrainConfig
            frames = FrameSet.load(args.frames)
            cameras = tuple(args.cameras.split(',')) if args.cameras else tuple(
                sorted(frames.images))
            report = train_and_evaluate(frames, args.out, cameras, args.heldout,
                                        TrainConfig(epochs=args.epochs, seed=args.seed))
            print(json.dumps(report))
            return 0
        cameras = tuple(args.cameras.split(','))
        if args.command == 'record-sim':
            frames = record_sim(args.episodes, cameras, tuple(args.image_size), args.seed)
        else:
            frames = record_store(args.store, cameras)
        frames.save(args.out)
        print(json.dumps({'frames': int(len(frames.labels)),
                          'successes': int(frames.labels.sum()),
                          'episodes': int(len(np.unique(frames.groups)))}))
    except (ValueError, OSError) as e:
        print(f'classifier_tool: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
