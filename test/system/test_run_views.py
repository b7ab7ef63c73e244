"""What people see of a real run: the learner's TensorBoard events (namespaced keys, read
back with TensorBoard's own EventAccumulator), `realrl report` (PNG plots and a summary
that agree with the run folder) and `realrl view` (Rerun: the recording's entity paths,
and the web viewer loaded in headless Chromium showing the run's camera frame)."""
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from gl_probe import require_offscreen_rendering
from headless_chromium import HeadlessChromium, chromium_path
from ros_env import ROOT, isolate, next_domain_id, require_workspace

REALRL = str(ROOT / '.venv/bin/realrl')
H, W = 48, 64
FAST = ['--set', 'learner.sac.learning_starts=60', '--set', 'learner.publish_every_s=0.5',
        '--set', 'learner.metrics_every_s=0.5', '--set', 'driver.control_hz=50.0',
        '--set', 'driver.episode_max_steps=25', '--set', "driver.cameras=['front']",
        '--set', f'driver.image_size=[{H},{W}]', '--no-stop-at-success', '--status-every-s', '1']


def learner_version(run: Path) -> int:
    path = run / 'metrics/learner.jsonl'
    lines = path.read_text().split('\n') if path.exists() else []
    return max((json.loads(line)['version'] for line in lines if line.endswith('}')), default=0)


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    """A real `realrl train` of the demo graph with a camera, stopped (SIGTERM, as Ctrl-C)
    once the learner has published a few weights versions."""
    require_workspace()
    require_offscreen_rendering()
    isolate(next_domain_id())
    run = tmp_path_factory.mktemp('views') / 'run'
    log = open(run.parent / 'train.log', 'wb')
    p = subprocess.Popen([REALRL, 'train', '--config', 'config/reach_sim.yaml', '--run-dir',
                          str(run), '--max-wall-s', '300', *FAST], cwd=ROOT, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while learner_version(run) < 3 and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2.0)  # a few more metrics lines and episodes after that version
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        code = p.wait(90)
        log.close()
    text = (run.parent / 'train.log').read_text(errors='replace')
    assert learner_version(run) >= 3, text[-3000:]
    assert code == 130 and 'interrupted' in text, text[-3000:]
    return run


def episodes_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / 'metrics/episodes.jsonl').read_text().splitlines()]


def test_tensorboard_events_hold_the_namespaced_keys(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run_dir / 'tensorboard'), size_guidance={'scalars': 0})
    acc.Reload()
    tags = set(acc.Tags()['scalars'])
    for key in ('train/critic_loss', 'train/actor_loss', 'train/alpha', 'train/updates',
                'rollout/success_rate', 'rollout/episode_return', 'rollout/intervention_rate',
                'time/updates_per_s', 'time/stored_per_s', 'time/publish_s',
                'time/staleness_mean', 'time/staleness_max', 'system/rss_mib'):
        assert key in tags, f'{key} missing; have {sorted(tags)}'
    assert {t.split('/')[0] for t in tags} <= {'train', 'rollout', 'time', 'system'}
    updates = [e.value for e in acc.Scalars('train/updates')]
    assert updates == sorted(updates) and updates[-1] > 0
    # Every finished episode the monitor logged before the learner's last write is there,
    # with its return, in order.
    logged = [e.value for e in acc.Scalars('rollout/episode_return')]
    returns = [e['return'] for e in episodes_of(run_dir)]
    assert 0 < len(logged) <= len(returns)
    assert np.allclose(logged, returns[:len(logged)], rtol=1e-5, atol=1e-5)
    staleness = [e.value for e in acc.Scalars('time/staleness_max')]
    assert min(staleness) >= 0 and max(staleness) >= 1  # versions moved on while sampling
    assert all(e.value == 0.0 for e in acc.Scalars('rollout/intervention_rate'))  # no teleop
    assert all(0 < e.value < 60 for e in acc.Scalars('time/publish_s'))


def test_report_writes_plots_and_a_summary_that_match_the_run(run_dir):
    import matplotlib.image as mpimg

    from realrl_replay.reader import ReplayReader
    p = subprocess.run([REALRL, 'report', str(run_dir)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    out = run_dir / 'report'
    for name in ('learning_curve.png', 'latency.png', 'staleness.png', 'throughput.png'):
        img = mpimg.imread(out / name)
        assert img.shape[0] > 200 and img.shape[1] > 300 and img[..., :3].std() > 0.05, name
    summary = dict(line.strip().split(': ', 1) for line in
                   (out / 'summary.txt').read_text().splitlines()[1:] if ': ' in line)
    assert int(summary['episodes']) == len(episodes_of(run_dir))
    assert int(summary['stored']) == ReplayReader(run_dir / 'replay').count
    # the robot's clock ran at 50 Hz: stored steps come 20 ms apart or more (holds add)
    assert float(summary['step_period_ms_p50[arm0]']) >= 19.0
    assert 'staleness_max_last' in summary and 'updates_per_s_median' in summary


def test_rerun_recording_holds_the_run(run_dir, tmp_path):
    import rerun as rr
    rrd = tmp_path / 'run.rrd'
    p = subprocess.run([REALRL, 'view', str(run_dir), '--save', str(rrd)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    paths = set(rr.chunk.RrdReader(rrd).store().schema().entity_paths())
    for entity in ('/robots/arm0/camera/front', '/robots/arm0/state', '/robots/arm0/action',
                   '/robots/arm0/reward', '/robots/arm0/intervention',
                   '/robots/arm0/policy_version', '/episodes/return', '/episodes/success',
                   '/learner/train/critic_loss'):
        assert entity in paths, f'{entity} missing; have {sorted(paths)}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def last_frame(run: Path) -> np.ndarray:
    from realrl_replay.reader import ReplayReader
    reader = ReplayReader(run / 'replay')
    rows = reader.read_range(reader.first, reader.count, ['obs/image_front', 'seq'])
    return rows['obs/image_front'][int(np.argmax(rows['seq']))]


def best_match(screenshot: np.ndarray, frame: np.ndarray) -> float:
    """Highest normalized correlation of the frame, at any whole-pixel scale, in the shot."""
    import cv2
    gray = cv2.cvtColor(screenshot, cv2.COLOR_RGB2GRAY)
    best = -1.0
    for scale in np.arange(1.0, 12.0, 0.25):
        size = (int(W * scale), int(H * scale))
        if size[0] > gray.shape[1] or size[1] > gray.shape[0]:
            break
        template = cv2.cvtColor(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR),
                                cv2.COLOR_RGB2GRAY)
        best = max(best, float(cv2.matchTemplate(gray, template, cv2.TM_CCOEFF_NORMED).max()))
    return best


def test_rerun_web_viewer_in_headless_chromium_shows_the_camera(run_dir, tmp_path):
    """`realrl view` serves; Chromium loads the viewer (WebGL in software); within a minute
    the page shows the run's last camera frame (found by template matching)."""
    import cv2
    if chromium_path() is None:
        pytest.skip("Debian's chromium is not installed (scripts/system_packages.sh does it)")
    web, grpc = free_port(), free_port()
    log_path = tmp_path / 'view.log'
    log = open(log_path, 'wb')
    view = subprocess.Popen([REALRL, 'view', str(run_dir), '--web-port', str(web),
                             '--grpc-port', str(grpc)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    browser, score, image = None, -1.0, None
    try:
        deadline = time.monotonic() + 60
        while 'serving' not in log_path.read_text(errors='replace'):
            assert view.poll() is None and time.monotonic() < deadline, \
                log_path.read_text(errors='replace')
            time.sleep(0.2)
        url = log_path.read_text().split(' at ', 1)[1].split()[0]
        (tmp_path / 'chromium').mkdir()
        browser = HeadlessChromium(tmp_path / 'chromium')
        browser.open(url)
        frame = last_frame(run_dir)
        deadline = time.monotonic() + 90
        while score < 0.8 and time.monotonic() < deadline:
            time.sleep(2.0)
            png = np.frombuffer(browser.screenshot(), np.uint8)
            image = cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            score = best_match(image, frame)
    finally:
        if browser is not None:
            browser.close()
        os.killpg(view.pid, signal.SIGTERM)
        view.wait(30)
        log.close()
    if image is not None:
        cv2.imwrite(str(tmp_path / 'viewer.png'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert image is not None and image.std() > 10  # not a blank page
    assert score > 0.8, (f"the run's last camera frame is not on the page (best match "
                         f'{score:.2f}; screenshot {tmp_path / "viewer.png"})')
