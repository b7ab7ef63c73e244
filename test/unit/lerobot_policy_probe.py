"""Run by test_lerobot_policy_own.py in .venv-lerobot (LeRobot 0.4.2): builds a small ACT policy
with random weights (no pretrained backbone: nothing is downloaded) and dataset stats, saves it
and its pre/post processors to argv[1], loads it back through realrl's LeRobotChunkActor and
prints one JSON line: the wrapper's chunks and the saved policy's own chunks for the same
inputs."""
import json
import sys

import numpy as np
import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors

from realrl_policy.actors.lerobot_policy import LeRobotChunkActor

folder = sys.argv[1]
H, W, STATE, ACT, CHUNK = 32, 48, 3, 2, 5
IMAGE = 'observation.images.wrist'
cfg = ACTConfig(
    input_features={'observation.state': PolicyFeature(FeatureType.STATE, (STATE,)),
                    IMAGE: PolicyFeature(FeatureType.VISUAL, (3, H, W))},
    output_features={'action': PolicyFeature(FeatureType.ACTION, (ACT,))},
    pretrained_backbone_weights=None, chunk_size=CHUNK, n_action_steps=CHUNK, dim_model=32,
    n_heads=2, dim_feedforward=64, n_encoder_layers=1, n_decoder_layers=1, use_vae=False,
    device='cpu')
torch.manual_seed(0)
policy = ACTPolicy(cfg)
f32 = lambda *v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
stats = {'observation.state': {'mean': f32(0.5, -1.0, 2.0), 'std': f32(0.5, 2.0, 1.0)},
         'action': {'mean': f32(3.0, -2.0), 'std': f32(10.0, 0.1)},
         IMAGE: {'mean': torch.full((3, 1, 1), 0.4), 'std': torch.full((3, 1, 1), 0.2)}}
pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
policy.save_pretrained(folder)
pre.save_pretrained(folder)
post.save_pretrained(folder)

rng = np.random.default_rng(1)
images = rng.integers(0, 256, (2, H, W, 3), dtype=np.uint8)
state = np.array([0.7, -0.3, 1.9], np.float32)


def own(image):
    """The saved policy's own chunk, through its own processors (image: uint8 HWC)."""
    batch = {'observation.state': torch.as_tensor(state)[None],
             IMAGE: torch.as_tensor(image.transpose(2, 0, 1).astype(np.float32) / 255)[None]}
    with torch.no_grad():
        return post(policy.predict_action_chunk(pre(batch)))[0].numpy()


actor = LeRobotChunkActor(folder, 'act')
chunks = [actor.act({'observation.state': state, IMAGE: image}) for image in images]
as_float = actor.act({'observation.state': state,
                      IMAGE: images[0].transpose(2, 0, 1).astype(np.float32) / 255})
with torch.no_grad():  # without the saved stats (normalised actions)
    raw = policy.predict_action_chunk(pre({
        'observation.state': torch.as_tensor(state)[None],
        IMAGE: torch.as_tensor(images[0].transpose(2, 0, 1).astype(np.float32) / 255)[None]}))
print(json.dumps({
    'lerobot': __import__('lerobot').__version__, 'dtype': str(chunks[0].dtype),
    'chunks': [c.tolist() for c in chunks], 'own': [own(i).tolist() for i in images],
    'as_float': as_float.tolist(), 'again': actor.act({'observation.state': state,
                                                       IMAGE: images[0]}).tolist(),
    'raw': raw[0].numpy().tolist(), 'chunk_size': CHUNK, 'act_dim': ACT}))
