"""`realrl eval`: a trained policy, frozen, on the run's robots for N episodes.

The run's graph (its graph.yaml) is started without its learner and its replay node: the
drivers, the reward node and the policy, which serves the checkpoint's actor and listens to
no weights topic. Nothing is written into the run's replay store; the drivers' transitions
go unacknowledged (they are not re-sent). The evaluation's logs and episodes go to
<run>/eval-<time>/, its figures to <run>/eval-<time>.json: success rate, mean return and
time-to-success (mean steps and seconds, at the control clock, of successful episodes).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from realrl_bringup.graph import build_graph, read_description
from realrl_bringup.run import GRAPH_SNAPSHOT, Run, RunOptions
from realrl_common.config import ConfigError
from realrl_common.plugins import node_kind

LEFT_OUT = ('learner', 'replay')
"""Roles not started by an evaluation."""
NO_RESEND_S = 1e9
"""The drivers' resend_after_s: without a replay node no ack comes, and nothing is re-sent."""


def locate(target: str | Path) -> tuple[Path, Path]:
    """(run folder, checkpoint file) of a run folder or of a checkpoint inside one."""
    target = Path(target)
    if target.is_dir():
        run_dir, ckpt = target, target / 'checkpoints' / 'latest.pt'
    else:
        ckpt, run_dir = target, target.resolve().parent.parent
    if not ckpt.is_file():
        raise ConfigError(f'{target}: no checkpoint {ckpt}; give a run folder of `realrl train` '
                          'with checkpoints/latest.pt, or a checkpoint file in one')
    if not (run_dir / GRAPH_SNAPSHOT).is_file():
        raise ConfigError(f'{target}: no {GRAPH_SNAPSHOT} in {run_dir}; the checkpoint must be '
                          'in <run>/checkpoints/ of a `realrl train` run')
    return run_dir, ckpt


def check_checkpoint(ckpt: Path) -> None:
    """ConfigError naming the file and what is wrong unless its actor can be served: checked
    here, before any node starts, so a truncated file or one of another format ends the
    evaluation at once (the policy node would only stop on it after start-up)."""
    from realrl_policy.weights_file import read_weights_file  # torch: only when evaluating
    try:
        read_weights_file(ckpt)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def eval_description(description: dict, ckpt: Path, deterministic: bool, seed: int) -> dict:
    """The run's description without learner and replay; the policy on the checkpoint and the
    drivers on their own seeds, writing to no store, never waiting for weights (mode async,
    whatever the run's mode was)."""
    nodes = []
    for node in description['nodes']:
        role = node_kind(node['package'], node['executable']).role
        if role in LEFT_OUT:
            continue
        params = dict(node.get('parameters') or {})
        if role == 'policy':
            params.update(weights_file=str(ckpt.resolve()), deterministic=deterministic)
        elif role == 'driver':
            params.update(replay_wait_s=0.0, resend_after_s=NO_RESEND_S, sync_weights=False,
                          seed=seed + int(params.get('seed', 0)))
        nodes.append({**node, 'parameters': params})
    return {**description, 'nodes': nodes, 'mode': 'async'}  # no learner: nothing to wait for


def summarize(episodes: list[dict], control_hz: dict[str, float], n: int) -> dict:
    """Success rate, mean return and time-to-success of the first n episodes."""
    episodes = episodes[:n]
    wins = [e for e in episodes if e.get('success')]
    out = {'episodes': len(episodes),
           'success_rate': len(wins) / len(episodes) if episodes else 0.0,
           'mean_return': (sum(float(e['return']) for e in episodes) / len(episodes)
                           if episodes else 0.0),
           'time_to_success_steps': None, 'time_to_success_s': None}
    if wins:
        out['time_to_success_steps'] = sum(int(e['steps']) for e in wins) / len(wins)
        out['time_to_success_s'] = sum(int(e['steps']) / control_hz[e['robot_id']]
                                       for e in wins) / len(wins)
    return out


def evaluate(target: str, episodes: int, deterministic: bool, seed: int = 100_000,
             max_wall_s: float | None = None) -> tuple[int, dict]:
    """Runs the evaluation; (exit status, figures). The figures also go to the run folder."""
    if episodes < 1:
        raise ConfigError(f'--episodes must be >= 1, got {episodes}')
    run_dir, ckpt = locate(target)
    check_checkpoint(ckpt)
    description = eval_description(read_description(run_dir / GRAPH_SNAPSHOT), ckpt,
                                   deterministic, seed)
    stamp = time.strftime('%Y%m%d-%H%M%S')
    eval_dir = run_dir / f'eval-{stamp}'
    graph = build_graph(description, {'run_dir': str(run_dir.resolve())}, str(run_dir))
    options = RunOptions(max_wall_s, stop_at_success=False, max_episodes=episodes)
    code = Run(graph, eval_dir, options).execute()
    log = eval_dir / 'metrics' / 'episodes.jsonl'
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    hz = {graph.configs[d.fqn].robot_id: graph.configs[d.fqn].control_hz for d in graph.drivers}
    figures = {'checkpoint': str(ckpt), 'deterministic': deterministic,
               **summarize(rows, hz, episodes)}
    if len(rows) < episodes:
        code = code or 1
    (run_dir / f'eval-{stamp}.json').write_text(json.dumps(figures, indent=2))
    return code, figures
