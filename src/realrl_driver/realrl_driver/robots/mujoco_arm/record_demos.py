"""Record scripted-expert demonstrations of peg insertion into a replay store.

Each episode runs the simulation as the driver does (reset with a seed, then one action,
state, camera frames and label per control step) with the scripted expert acting, until
success or ``episode_max_steps``. The episodes go through ``realrl_replay.import_demos``
(its npz form) into a new store marked ``source: 'demo'``, with the robot description the
driver publishes, so a learner's ``demo_stores`` mixes it with the online store.

    python -m realrl_driver.robots.mujoco_arm.record_demos --episodes 20 --out DIR
        [--params DRIVER.yaml] [--seed 100000] [--noise 0.0] [--robot demo]

``--params``: a YAML mapping of the driver's parameters (``mujoco_peg_driver``: peg,
cameras, image_size, control_hz, episode_max_steps), or a graph YAML (``config/peg_sim.yaml``)
whose ``mujoco_peg_driver`` node's parameters are taken, so the demonstrations match the
robot they will train; default: the driver's defaults. Seeds start at ``--seed`` (apart from the
driver's, which start at its ``seed``, 0 by default).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realrl_common.config import ConfigError, build_config
from realrl_driver.robots.mujoco_arm.peg_config import MujocoPegDriverConfig
from realrl_driver.robots.mujoco_arm.peg_expert import PegExpert
from realrl_driver.robots.mujoco_arm.peg_robot import MujocoPegRobot, make_peg_arm

DEFAULT_SEED = 100_000


@dataclass(frozen=True)
class RecordReport:
    """What a recording wrote."""

    path: Path
    episodes: int
    successes: int
    transitions: int


def description(robot: MujocoPegRobot, cfg: MujocoPegDriverConfig, robot_id: str) -> dict:
    """The robot description the driver of cfg publishes (as the replay node stores it)."""
    h, w = cfg.image_size
    return {'robot_id': robot_id, 'kind': robot.kind, 'control_hz': float(cfg.control_hz),
            'state_dim': int(robot.state_dim),
            'state_layout': {k: [int(a), int(b)] for k, (a, b) in
                             robot.observation_layout.items()},
            'action_dim': int(robot.action_dim),
            'action_low': robot.action_low.astype(float).tolist(),
            'action_high': robot.action_high.astype(float).tolist(),
            'action_units': robot.action_units, 'cameras': list(cfg.cameras),
            'image_size': [int(h), int(w)] if cfg.cameras else [0, 0],
            'episode_max_steps': int(cfg.episode_max_steps),
            'capabilities': list(robot.capabilities)}


def record_episode(robot: MujocoPegRobot, expert: PegExpert, cfg: MujocoPegDriverConfig,
                   seed: int) -> tuple[dict[str, np.ndarray], bool]:
    """One expert episode from reset(seed) as import_demos' npz arrays, and its success."""
    h, w = cfg.image_size

    def frame(state):
        out = {'state': np.asarray(state, np.float32)}
        out.update({f'{cam}_image': robot.render(cam, w, h) for cam in cfg.cameras})
        return out

    obs = [frame(robot.reset(seed))]
    actions, rewards, dones = [], [], []
    success = False
    for _ in range(cfg.episode_max_steps):
        action = expert.act()
        state = robot.apply(action)
        label = robot.outcome()
        obs.append(frame(state))
        actions.append(action)
        rewards.append(label.reward)
        dones.append(label.terminated)
        if label.terminated:
            success = label.success
            break
    arrays = {'actions': np.asarray(actions, np.float32),
              'rewards': np.asarray(rewards, np.float32), 'dones': np.asarray(dones, bool)}
    for key in obs[0]:
        series = np.stack([o[key] for o in obs])
        arrays[f'obs/{key}'] = series[:-1]
        arrays[f'next_obs/{key}'] = series[1:]
    return arrays, success


def record_demos(out: str | Path, episodes: int, cfg: MujocoPegDriverConfig | None = None, *,
                 seed: int = DEFAULT_SEED, noise: float = 0.0,
                 robot_id: str = 'demo') -> RecordReport:
    """Record `episodes` expert episodes (seeds seed, seed+1, ...) into a new store at out
    (absent or an empty folder)."""
    from realrl_replay.import_demos import import_demos  # the one demo store writer
    if episodes < 1:
        raise ValueError(f'episodes must be >= 1, got {episodes}')
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f'{out}: exists and is not an empty folder; give a new folder')
    cfg = cfg or MujocoPegDriverConfig()
    robot = make_peg_arm(cfg)
    expert = PegExpert(robot, noise=noise, seed=seed)
    successes = 0
    try:
        with tempfile.TemporaryDirectory(prefix='peg_demos_') as tmp:
            for i in range(episodes):
                arrays, success = record_episode(robot, expert, cfg, seed + i)
                successes += int(success)
                np.savez(Path(tmp) / f'episode_{i:06d}.npz', **arrays)
            report = import_demos(out, tmp, 'npz', robot=robot_id, state_keys=['state'],
                                  description=description(robot, cfg, robot_id),
                                  control_hz=cfg.control_hz)
    finally:
        robot.close()
    return RecordReport(Path(out), report.episodes, successes, report.transitions)


def driver_params(values: dict, where: str) -> dict:
    """The driver's parameters from a --params YAML: the mapping itself, or in a graph
    (a mapping with ``nodes``) the parameters of its ``mujoco_peg_driver`` node."""
    if 'nodes' not in values:
        return values
    drivers = [n for n in values['nodes'] or []
               if isinstance(n, dict) and n.get('executable') == 'mujoco_peg_driver']
    if len(drivers) != 1:
        raise ConfigError(f'{where}: a graph with {len(drivers)} mujoco_peg_driver nodes; '
                          'give a graph with one, or a YAML of the driver parameters')
    params = dict(drivers[0].get('parameters') or {})
    params.pop('robot_id', None)  # the demonstrations are stored under --robot
    return params


def main(argv=None) -> int:
    """Command line of the demonstration recorder; returns the exit status."""
    ap = argparse.ArgumentParser(prog='python -m realrl_driver.robots.mujoco_arm.record_demos',
                                 description=__doc__.split('\n\n')[0])
    ap.add_argument('--episodes', type=int, required=True, help='how many episodes')
    ap.add_argument('--out', required=True, help='new store folder (absent or empty)')
    ap.add_argument('--params', default=None, help="YAML of the driver's parameters")
    ap.add_argument('--seed', type=int, default=DEFAULT_SEED, help='seed of the first episode')
    ap.add_argument('--noise', type=float, default=0.0, help='std of action noise (0: none)')
    ap.add_argument('--robot', default='demo', help="robot_id of the rows (default 'demo')")
    args = ap.parse_args(argv)
    from realrl_replay.errors import StoreError
    try:
        values = {}
        if args.params:
            import yaml
            values = driver_params(yaml.safe_load(Path(args.params).read_text()) or {},
                                   args.params)
        cfg = build_config(MujocoPegDriverConfig, values, where=args.params or '')
        report = record_demos(args.out, args.episodes, cfg, seed=args.seed, noise=args.noise,
                              robot_id=args.robot)
    except (ConfigError, ValueError, OSError, StoreError) as e:
        print(f'record_demos: {e}', file=sys.stderr)
        return 2
    print(json.dumps({'store': str(report.path), 'episodes': report.episodes,
                      'successes': report.successes, 'transitions': report.transitions}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
