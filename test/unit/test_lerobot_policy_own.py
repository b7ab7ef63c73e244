"""realrl's LeRobotChunkActor serving a real LeRobot policy: in LeRobot's own venv
(.venv-lerobot, LeRobot 0.4.2, made by scripts/lerobot_venv.sh), lerobot_policy_probe.py saves a
small random-weight ACT policy with its pre/post processors (dataset stats), loads it back
through the wrapper and serves chunks for an image + state observation. They must equal the
saved policy's own predict_action_chunk through its own processors, follow the image, be
unnormalised by the saved action stats, and not depend on the image's form (uint8 HWC or float
CHW). The missing-weights / missing-package errors are in test_chunk_actors.py."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
LEROBOT_PYTHON = ROOT / '.venv-lerobot' / 'bin' / 'python'
LEROBOT_READY = ROOT / '.venv-lerobot' / '.realrl-requirements'  # written by the script last
PROBE = Path(__file__).with_name('lerobot_policy_probe.py')


def test_lerobot_act_policy_loads_and_serves_its_own_chunks(tmp_path):
    if not LEROBOT_READY.exists():
        pytest.skip('LeRobot 0.4.2 venv (.venv-lerobot) missing or unfinished: '
                    'run bash scripts/lerobot_venv.sh')
    env = {**os.environ, 'PYTHONPATH': str(ROOT / 'src' / 'realrl_policy'),
           'HF_HUB_OFFLINE': '1'}
    done = subprocess.run([str(LEROBOT_PYTHON), str(PROBE), str(tmp_path / 'act')], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out['lerobot'] == '0.4.2'
    assert {p.name for p in (tmp_path / 'act').iterdir()} >= {
        'config.json', 'model.safetensors', 'policy_preprocessor.json',
        'policy_postprocessor.json'}

    chunks, own = np.array(out['chunks']), np.array(out['own'])
    assert out['dtype'] == 'float32'
    assert chunks.shape == own.shape == (2, out['chunk_size'], out['act_dim'])
    assert np.isfinite(chunks).all()
    np.testing.assert_allclose(chunks, own, rtol=1e-5, atol=1e-6)
    # deterministic, and the same for the image as uint8 (H, W, 3) or float (3, H, W) in [0, 1]
    np.testing.assert_array_equal(np.array(out['again']), chunks[0])
    np.testing.assert_allclose(np.array(out['as_float']), chunks[0], rtol=1e-5, atol=1e-6)
    # the image reaches the policy: another image, another chunk
    assert np.abs(chunks[0] - chunks[1]).max() > 1e-3
    # the saved action stats (mean 3, -2; std 10, 0.1) unnormalise the policy's raw output
    np.testing.assert_allclose(chunks[0], np.array(out['raw']) * [10.0, 0.1] + [3.0, -2.0],
                               rtol=1e-5, atol=1e-5)
