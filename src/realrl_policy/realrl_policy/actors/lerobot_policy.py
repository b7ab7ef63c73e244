"""LeRobot's policies (ACT, diffusion, SmolVLA, pi0, ...) as chunk actors, loaded from a local
folder; no ROS.

Run with LeRobot 0.4.2 (Python 3.11, torch 2.7.1) in ``.venv-lerobot`` (scripts/lerobot_venv.sh,
pins in requirements-lerobot.txt): test_lerobot_policy_own.py saves a small random-weight ACT
policy with its pre/post processors there, loads it through this wrapper and serves a chunk
equal to the policy's own ``predict_action_chunk``. The API used (``get_policy_class``,
``PreTrainedPolicy.from_pretrained``, ``make_pre_post_processors(cfg, pretrained_path=...)``,
``predict_action_chunk``) is the same in LeRobot 0.6.1, which was not run. SmolVLA and pi0
checkpoints need LeRobot's own extras (``lerobot[smolvla]``, ``lerobot[pi]``: transformers and
more), not installed in ``.venv-lerobot``.

LeRobot does not install beside realrl's pins (Python 3.11, torch 2.13, numpy 2.4, opencv 5.0):
0.5 and later need Python >= 3.12, and 0.4.x needs torch < 2.8 (0.4.2) / < 2.11 (0.4.4) and
opencv < 4.13; so this runs in LeRobot's own environment, not in realrl's ``.venv``.
Weights load from local files only (no internet at run time).
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

WEIGHT_FILES = ('config.json', 'model.safetensors')
"""What ``policy.save_pretrained(folder)`` writes and ``from_pretrained`` reads (the processors'
``policy_preprocessor.json`` / ``policy_postprocessor.json`` and their stats go beside them)."""

INSTALL_HINT = ('LeRobot is not installed. It is an optional extra that does not fit '
                "realrl's environment (Python 3.11, torch 2.13, numpy 2.4): LeRobot 0.6.1 needs "
                'Python >= 3.12, torch < 2.12 and numpy < 2.3; 0.4.2 (Python 3.11) needs '
                'torch < 2.8. Run this policy in an environment built for LeRobot: '
                "'bash scripts/lerobot_venv.sh' makes .venv-lerobot with LeRobot 0.4.2 (this "
                'wrapper was run there with an ACT policy); SmolVLA/pi0 checkpoints also need '
                "'lerobot[smolvla]' or 'lerobot[pi]' there. Or use the built-in 'vla_tiny' actor")


def check_weights(folder: str | Path) -> Path:
    """The folder, if it holds a saved LeRobot policy; FileNotFoundError saying where to
    put the files otherwise."""
    folder = Path(folder)
    missing = [name for name in WEIGHT_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f'no LeRobot policy weights in {str(folder)!r}: {missing} missing. Put the files '
            f'{list(WEIGHT_FILES)} that policy.save_pretrained(folder) writes there (copy '
            'them from a machine with internet access; nothing is downloaded at run time)')
    return folder


def to_lerobot(key: str, value):
    """One observation entry as LeRobot's batch takes it: text as a one-item list, a uint8
    (H, W, 3) camera image as float32 (3, H, W) in [0, 1] (as LeRobot's datasets give frames),
    anything else as a tensor; with the batch axis."""
    torch = importlib.import_module('torch')
    if isinstance(value, str):
        return [value]
    array = np.asarray(value)
    if key.startswith('observation.images.') and array.dtype == np.uint8 and array.ndim == 3:
        array = array.transpose(2, 0, 1).astype(np.float32) / 255.0
    return torch.as_tensor(array)[None]


class LeRobotChunkActor:
    """A LeRobot policy serving action chunks: ``act(obs) -> (H, act_dim)``."""

    def __init__(self, folder: str | Path, policy_type: str, device: str = 'cpu'):
        folder = check_weights(folder)
        try:
            factory = importlib.import_module('lerobot.policies.factory')
        except ImportError as e:
            raise ImportError(f'{INSTALL_HINT} ({e})') from e
        policy_cls = factory.get_policy_class(policy_type)
        self.policy = policy_cls.from_pretrained(folder, local_files_only=True).to(device)
        self.policy.eval()
        # The normalisation and tokenisation saved beside the weights, in and out; the inputs
        # go to this actor's device whatever device the policy was saved from.
        self.preprocess, self.postprocess = factory.make_pre_post_processors(
            self.policy.config, pretrained_path=str(folder),
            preprocessor_overrides={'device_processor': {'device': device}})
        self.device = device

    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool = True) -> np.ndarray:
        """The next chunk (float32, (H, act_dim)) for one observation, given as LeRobot's
        feature names ('observation.state', 'observation.images.<camera>', 'task'); images as
        float (3, H, W) in [0, 1] or uint8 (H, W, 3)."""
        torch = importlib.import_module('torch')
        batch = {k: to_lerobot(k, v) for k, v in obs.items()}
        with torch.no_grad():
            chunk = self.postprocess(self.policy.predict_action_chunk(self.preprocess(batch)))
        return chunk[0].float().cpu().numpy()
