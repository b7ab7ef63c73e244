"""LeRobot's policies (SmolVLA, pi0, ...) as chunk actors, loaded from a local folder; no ROS.

LeRobot is an optional extra that does NOT install beside realrl's pins today: LeRobot 0.5
and later need Python >= 3.12 (0.6.1 also torch < 2.12, numpy < 2.3, opencv < 4.14), and
0.4.4, the last for Python 3.11, needs torch < 2.11 and opencv < 4.13; realrl pins Python
3.11, torch 2.13, numpy 2.4 and opencv 5.0. So this wrapper is written against LeRobot
0.6.1's API (``PreTrainedPolicy.from_pretrained``, ``predict_action_chunk``,
``lerobot.policies.factory.get_policy_class``) and has not run here; it gives the errors
that say what is missing, and is for an environment built around LeRobot's own pins.
Weights load from local files only (no internet at run time).
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

WEIGHT_FILES = ('config.json', 'model.safetensors')
"""What ``policy.save_pretrained(folder)`` writes and ``from_pretrained`` reads."""

INSTALL_HINT = ('LeRobot is not installed. It is an optional extra that does not fit '
                "realrl's environment (Python 3.11, torch 2.13, numpy 2.4): LeRobot 0.6.1 needs "
                'Python >= 3.12, torch < 2.12 and numpy < 2.3. Run this policy in an '
                "environment built for LeRobot ('pip install lerobot[smolvla]==0.6.1' or "
                "'lerobot[pi]==0.6.1' there), or use the built-in 'vla_tiny' actor")


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
        # The normalisation and tokenisation saved beside the weights, in and out.
        self.preprocess, self.postprocess = factory.make_pre_post_processors(
            self.policy.config, pretrained_path=str(folder))
        self.device = device

    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool = True) -> np.ndarray:
        """The next chunk (float32, (H, act_dim)) for one observation, given as LeRobot's
        feature names ('observation.state', 'observation.images.<camera>', 'task')."""
        torch = importlib.import_module('torch')
        batch = {k: [v] if isinstance(v, str) else torch.as_tensor(np.asarray(v))[None]
                 for k, v in obs.items()}
        with torch.no_grad():
            chunk = self.postprocess(self.policy.predict_action_chunk(self.preprocess(batch)))
        return chunk[0].float().cpu().numpy()
