"""`realrl view RUN_DIR`: a finished run in Rerun, served to a browser (no ROS).

What is logged, on three timelines (``stamp``: the transition's time; ``step``: the robot's
row number; ``run_time``: seconds since the run started, for episodes and the learner):

  robots/<id>/camera/<cam>       the stored camera frames (every ``frame_every``-th row)
  robots/<id>/state              the state vector of each stored transition
  robots/<id>/action             the action applied
  robots/<id>/reward             reward; robots/<id>/intervention (1 where a person acted)
  robots/<id>/policy_version     the weights version that chose the action
  episodes/return, episodes/success        one point per finished episode
  learner/<key>                  the learner's metrics (losses, alpha, version, updates)

``serve`` starts Rerun's gRPC server (which keeps the data for viewers that connect later)
and its web viewer over HTTP, and prints the address to open; ``save`` writes an .rrd file
that the native viewer (``rerun FILE``) opens.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from realrl_bringup.progress import read_jsonl

APP_ID = 'realrl'
SCALARS = ('reward', 'policy_version', 'intervention')


IMAGE_BLOCK_ROWS = 512
"""Camera frames are read this many rows at a time (a run's frames need not fit in memory)."""


def _open_store(run_dir: Path):
    """The run's store reader, or None without a readable store."""
    from realrl_replay.errors import StoreError
    from realrl_replay.reader import ReplayReader
    store = run_dir / 'replay'
    if not store.is_dir():
        return None
    try:
        return ReplayReader(store)
    except StoreError:
        return None


def log_store(rec, run_dir: Path, frame_every: int = 1) -> int:
    """Logs the store's transitions robot by robot; returns how many rows."""
    import rerun as rr
    reader = _open_store(run_dir)
    if reader is None or reader.count <= reader.first:
        return 0
    fields = reader.schema.by_name
    cameras = sorted(k[len('obs/image_'):] for k in fields if k.startswith('obs/image_'))
    small = [k for k in ('robot_id', 'seq', 'stamp_ns', 'obs/state', 'action', *SCALARS)
             if k in fields]
    first = reader.first
    rows = reader.read_range(first, reader.count, small)
    names = reader.robot_names
    for code in np.unique(rows['robot_id']):
        base = f'robots/{names[int(code)]}'
        mine = np.flatnonzero(rows['robot_id'] == code)
        mine = mine[np.argsort(rows['seq'][mine], kind='stable')]
        stamps = rows['stamp_ns'][mine] * 1e-9 if 'stamp_ns' in rows else None
        times = [rr.TimeColumn('step', sequence=np.arange(len(mine)))]
        if stamps is not None:
            times.append(rr.TimeColumn('stamp', timestamp=stamps))
        for name, entity in (('obs/state', 'state'), ('action', 'action'),
                             *((k, k) for k in SCALARS)):
            if name not in rows:
                continue
            values = np.asarray(rows[name][mine], dtype=np.float64).reshape(len(mine), -1)
            columns = rr.Scalars.columns(scalars=values.reshape(-1))
            if values.shape[1] > 1:
                columns = columns.partition([values.shape[1]] * len(mine))
            rr.send_columns(f'{base}/{entity}', indexes=times, columns=columns, recording=rec)
        shown = np.arange(0, len(mine), frame_every)
        for cam in cameras:
            for start in range(0, len(shown), IMAGE_BLOCK_ROWS):
                part = shown[start:start + IMAGE_BLOCK_ROWS]
                frames = reader.read(first + mine[part], [f'obs/image_{cam}'])
                for j, step in enumerate(part):
                    rr.set_time('step', sequence=int(step), recording=rec)
                    if stamps is not None:
                        rr.set_time('stamp', timestamp=float(stamps[step]), recording=rec)
                    rr.log(f'{base}/camera/{cam}', rr.Image(frames[f'obs/image_{cam}'][j]),
                           recording=rec)
    return len(rows['robot_id'])


def log_metrics(rec, run_dir: Path) -> tuple[int, int]:
    """Logs episodes and learner metrics; returns (episodes, learner lines)."""
    import rerun as rr
    episodes = read_jsonl(run_dir / 'metrics' / 'episodes.jsonl')
    if episodes:
        t = [rr.TimeColumn('run_time', duration=[e['time_s'] for e in episodes])]
        for key, entity in (('return', 'episodes/return'), ('success', 'episodes/success')):
            values = np.array([float(e.get(key, 0.0)) for e in episodes])
            rr.send_columns(entity, indexes=t, columns=rr.Scalars.columns(scalars=values),
                            recording=rec)
    learner = read_jsonl(run_dir / 'metrics' / 'learner.jsonl')
    if learner:
        t = [rr.TimeColumn('run_time', duration=[r['time_s'] for r in learner])]
        keys = sorted({k for r in learner for k, v in r.items()
                       if k != 'time_s' and isinstance(v, (int, float))})
        for key in keys:
            values = np.array([float(r.get(key, np.nan)) for r in learner])
            rr.send_columns(f'learner/{key}', indexes=t,
                            columns=rr.Scalars.columns(scalars=values), recording=rec)
    return len(episodes), len(learner)


def recording_of(run_dir: str | Path):
    """A Rerun recording holding the run; FileNotFoundError if run_dir is not a run."""
    import rerun as rr
    run_dir = Path(run_dir)
    if not (run_dir / 'metrics').is_dir() and not (run_dir / 'replay').is_dir():
        raise FileNotFoundError(f'{run_dir} is not a run folder (no metrics/ and no replay/); '
                                'give a folder made by realrl train, e.g. runs/reach_sim-...')
    return rr.RecordingStream(APP_ID, recording_id=run_dir.resolve().name)


def fill(rec, run_dir: str | Path, frame_every: int = 1) -> dict:
    """Logs the whole run into ``rec``; returns what it logged."""
    run_dir = Path(run_dir)
    rows = log_store(rec, run_dir, frame_every)
    episodes, learner = log_metrics(rec, run_dir)
    return {'transitions': rows, 'episodes': episodes, 'learner_lines': learner}


def save(run_dir: str | Path, out: str | Path, frame_every: int = 1) -> dict:
    """Writes the run as an .rrd file; returns what it logged."""
    rec = recording_of(run_dir)
    rec.save(str(out))
    logged = fill(rec, run_dir, frame_every)
    rec.flush()
    rec.disconnect()
    return logged


def serve(run_dir: str | Path, web_port: int = 9090, grpc_port: int = 9876,
          frame_every: int = 1, open_browser: bool = False):
    """Serves the run to browsers; returns (viewer URL, what was logged, the recording).
    Keep the recording: once it is garbage-collected, the server has nothing to serve."""
    import rerun as rr
    rec = recording_of(run_dir)
    # No default blueprint: with one, rerun 0.41's web viewer stayed on its welcome page.
    uri = rr.serve_grpc(grpc_port=grpc_port, recording=rec)
    logged = fill(rec, run_dir, frame_every)
    rr.serve_web_viewer(web_port=web_port, open_browser=open_browser, connect_to=uri)
    return f'http://localhost:{web_port}/?url={uri}', logged, rec
