"""The learning-curve PNG of a run, from its metrics logs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from realrl_bringup.progress import read_jsonl


def plot_learning_curve(run_dir: Path, out: Path | None = None, window: int = 20) -> Path:
    """Plots a run's success rate, returns and learner metrics over time as a
    PNG (default: run_dir/learning_curve.png); returns its path."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out = out or run_dir / 'learning_curve.png'
    episodes = read_jsonl(run_dir / 'metrics' / 'episodes.jsonl')
    learner = read_jsonl(run_dir / 'metrics' / 'learner.jsonl')
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if episodes:
        t = np.array([e['time_s'] for e in episodes])
        success = np.array([float(e['success']) for e in episodes])
        ret = np.array([e['return'] for e in episodes])
        k = min(window, len(success))
        rate = np.convolve(success, np.ones(k) / k, mode='valid')
        axes[0].plot(t[k - 1:], rate, label=f'success rate (last {k})')
        axes[0].set_ylim(-0.05, 1.05)
        ax2 = axes[0].twinx()
        ax2.plot(t, ret, color='tab:gray', alpha=0.4, lw=0.8, label='episode return')
        ax2.set_ylabel('episode return')
    axes[0].set_xlabel('wall-clock time (s)')
    axes[0].set_ylabel('success rate')
    axes[0].set_title('episodes')
    if learner:
        t = [r['time_s'] for r in learner]
        for key in ('train/critic_loss', 'train/actor_loss'):
            if any(key in r for r in learner):
                axes[1].plot(t, [r.get(key, np.nan) for r in learner], label=key)
        if axes[1].get_legend_handles_labels()[0]:
            axes[1].legend(loc='upper right')
    axes[1].set_xlabel('wall-clock time (s)')
    axes[1].set_title('learner')
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
