"""`realrl report RUN_DIR`: a run folder as PNG plots and a short text summary (no ROS).

Reads what a run leaves: ``metrics/episodes.jsonl`` (episodes), ``metrics/learner.jsonl``
(updates over time), ``tensorboard/`` (the learner's event files: staleness, weights
publish time) and the replay store ``replay/`` (each transition's stamp, so the control
period the robots really kept, and the stored throughput). Writes into ``RUN_DIR/report/``:

  learning_curve.png   success rate and return over wall time, learner losses
  latency.png          control-period histogram per robot; weights publish time histogram
  staleness.png        learner version minus sampled rows' policy version, over updates
  throughput.png       transitions stored per second and SAC updates per second over time
  summary.txt          the figures behind the plots, in a few lines
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from realrl_bringup.learning_curve import plot_learning_curve
from realrl_bringup.progress import read_jsonl

REPORT_DIR = 'report'
PLOTS = ('learning_curve.png', 'latency.png', 'staleness.png', 'throughput.png')


def tensorboard_scalars(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar of the run's event files: tag -> (steps, values); {} without any."""
    tb = Path(run_dir) / 'tensorboard'
    if not tb.is_dir():
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(tb), size_guidance={'scalars': 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags().get('scalars', []):
        events = acc.Scalars(tag)
        out[tag] = (np.array([e.step for e in events]), np.array([e.value for e in events]))
    return out


def store_timing(run_dir: Path) -> dict[str, np.ndarray]:
    """Per robot, the stamps (s) of its stored transitions in order; {} without a store."""
    store = Path(run_dir) / 'replay'
    if not store.is_dir():
        return {}
    from realrl_replay.errors import StoreError
    from realrl_replay.reader import ReplayReader
    try:
        reader = ReplayReader(store)
    except StoreError:
        return {}
    if reader.count == 0 or 'stamp_ns' not in reader.schema.by_name:
        return {}
    rows = reader.read_range(reader.first, reader.count, ['stamp_ns', 'robot_id', 'seq'])
    names = reader.robot_names
    out = {}
    for code in np.unique(rows['robot_id']):
        mine = rows['robot_id'] == code
        order = np.argsort(rows['seq'][mine])
        out[names[int(code)]] = rows['stamp_ns'][mine][order].astype(np.float64) / 1e9
    return out


def control_periods(stamps: np.ndarray, nominal_max_s: float = 5.0) -> np.ndarray:
    """Gaps between consecutive stored steps of one robot, without the pauses between
    episodes and restarts (gaps above ``nominal_max_s``)."""
    gaps = np.diff(stamps)
    return gaps[(gaps > 0) & (gaps < nominal_max_s)]


def _rate(times: np.ndarray, bin_s: float) -> tuple[np.ndarray, np.ndarray]:
    if len(times) < 2:
        return np.zeros(0), np.zeros(0)
    edges = np.arange(times.min(), times.max() + bin_s, bin_s)
    counts, edges = np.histogram(times, edges)
    return edges[:-1] - times.min(), counts / bin_s


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_latency(out: Path, stamps: dict, tb: dict) -> dict:
    """Histograms of the control period per robot and of the weights publish time."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    figures = {}
    for robot, s in stamps.items():
        p = control_periods(s) * 1e3
        if len(p):
            axes[0].hist(p, bins=40, alpha=0.6, label=robot)
            figures[f'step_period_ms_p50[{robot}]'] = float(np.median(p))
            figures[f'step_period_ms_p99[{robot}]'] = float(np.percentile(p, 99))
    axes[0].set_xlabel('time between stored steps (ms): the control period, and holds')
    axes[0].set_ylabel('steps')
    if stamps:
        axes[0].legend()
    if 'time/publish_s' in tb:
        v = tb['time/publish_s'][1] * 1e3
        axes[1].hist(v, bins=30, color='tab:orange')
        figures['weights_publish_ms_p50'] = float(np.median(v))
    axes[1].set_xlabel('weights pack + publish time (ms)')
    axes[1].set_title('weight sync')
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return figures


def plot_staleness(out: Path, tb: dict) -> dict:
    """Mean and max staleness of sampled rows over updates."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    figures = {}
    for tag in ('time/staleness_mean', 'time/staleness_max'):
        if tag in tb:
            ax.plot(*tb[tag], label=tag.split('/')[1])
            figures[tag.replace('time/', '') + '_last'] = float(tb[tag][1][-1])
    ax.set_xlabel('SAC updates')
    ax.set_ylabel('learner version - row policy version')
    ax.set_title('staleness of sampled transitions')
    if figures:
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return figures


def plot_throughput(out: Path, stamps: dict, learner: list[dict], bin_s: float = 2.0) -> dict:
    """Transitions stored per second (all robots) and SAC updates per second, over time."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    figures = {}
    if stamps:
        t, rate = _rate(np.concatenate(list(stamps.values())), bin_s)
        ax.plot(t, rate, label='transitions stored / s')
        if len(rate):
            figures['stored_per_s_median'] = float(np.median(rate))
    if len(learner) >= 2:
        t = np.array([r['time_s'] for r in learner])
        u = np.array([r['updates'] for r in learner], dtype=np.float64)
        dt = np.diff(t)
        ok = dt > 0
        ups = np.diff(u)[ok] / dt[ok]
        ax.plot(t[1:][ok], ups, label='SAC updates / s')
        if len(ups):
            figures['updates_per_s_median'] = float(np.median(ups))
    ax.set_xlabel('wall-clock time (s)')
    ax.set_title('throughput')
    if figures:
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return figures


def episode_figures(episodes: list[dict], window: int = 20) -> dict:
    """Episodes, success rate (all and last ``window``), mean return, intervention rate."""
    if not episodes:
        return {'episodes': 0}
    success = np.array([bool(e.get('success')) for e in episodes], dtype=np.float64)
    steps = sum(int(e.get('steps', 0)) for e in episodes)
    interventions = sum(int(e.get('interventions', 0)) for e in episodes)
    return {'episodes': len(episodes), 'success_rate': float(success.mean()),
            f'success_rate_last_{window}': float(success[-window:].mean()),
            'mean_return': float(np.mean([e.get('return', 0.0) for e in episodes])),
            'intervention_rate': interventions / steps if steps else 0.0,
            'last_policy_version': int(episodes[-1].get('policy_version', 0))}


def make_report(run_dir: str | Path) -> Path:
    """Writes the report of a run folder; returns the report folder. FileNotFoundError
    if run_dir is not a run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / 'metrics').is_dir() and not (run_dir / 'replay').is_dir():
        raise FileNotFoundError(f'{run_dir} is not a run folder (no metrics/ and no replay/); '
                                'give a folder made by realrl train, e.g. runs/reach_sim-...')
    out = run_dir / REPORT_DIR
    out.mkdir(exist_ok=True)
    episodes = read_jsonl(run_dir / 'metrics' / 'episodes.jsonl')
    learner = read_jsonl(run_dir / 'metrics' / 'learner.jsonl')
    tb = tensorboard_scalars(run_dir)
    stamps = store_timing(run_dir)
    plot_learning_curve(run_dir, out / 'learning_curve.png')
    figures = episode_figures(episodes)
    if learner:
        figures['updates'] = int(learner[-1].get('updates', 0))
        figures['learner_version'] = int(learner[-1].get('version', 0))
    figures['stored'] = int(sum(len(s) for s in stamps.values()))
    figures.update(plot_latency(out / 'latency.png', stamps, tb))
    figures.update(plot_staleness(out / 'staleness.png', tb))
    figures.update(plot_throughput(out / 'throughput.png', stamps, learner))
    lines = [f'run {run_dir.resolve().name}']
    lines += [f'  {k}: {v:.4g}' if isinstance(v, float) else f'  {k}: {v}'
              for k, v in figures.items()]
    lines.append('  plots: ' + ', '.join(PLOTS))
    (out / 'summary.txt').write_text('\n'.join(lines) + '\n')
    return out
