"""The flow-matching actor, SAC with a flow policy, the tiny VLA and the LeRobot wrapper's
errors (realrl_policy.actors, realrl_learner.algorithms), with real torch."""

import numpy as np
import pytest
import torch

from realrl_common.config import build_config
from realrl_learner.algorithms.bc import BC, BCConfig
from realrl_learner.algorithms.sac_flow import SACFlow, SACFlowConfig
from realrl_policy.actors.flow import FlowActor, FlowActorConfig
from realrl_policy.actors.lerobot_policy import LeRobotChunkActor, check_weights
from realrl_policy.actors.vla_tiny import VLATiny, VLATinyConfig, tokenize
from realrl_policy.models import ActorConfig, actor_config_from_json
from realrl_policy.weights_blob import pack_actor, unpack_actor

torch.set_num_threads(1)
MODES = (-0.6, 0.6)


def near_modes(actions: np.ndarray) -> tuple[float, float]:
    """Shares of actions within 0.2 of each mode."""
    return tuple(float(np.mean(np.abs(actions - m) < 0.2)) for m in MODES)


def bimodal_batch(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """The same observation; half the demonstrations go to -0.6, half to +0.6."""
    sign = torch.randint(0, 2, (n, 1), generator=g).float() * 2 - 1
    return {'obs': torch.zeros(n, 1), 'action': 0.6 * sign + 0.03 * torch.randn(n, 1, generator=g)}


def test_flow_head_fits_two_modes_a_gaussian_cannot():
    flow_cfg = FlowActorConfig(hidden_sizes=(64, 64), flow_steps=10)
    flow = BC(1, 1, BCConfig(actor=flow_cfg, lr=3e-3), seed=0)
    gauss = BC(1, 1, BCConfig(actor=ActorConfig(hidden_sizes=(64, 64)), lr=3e-3), seed=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        batch = bimodal_batch(128, g)
        flow.update(batch)
        gauss.update(batch)
    torch.manual_seed(1)
    with torch.no_grad():
        flow_samples = flow.actor.sample({'obs': torch.zeros(400, 1)})[:, 0, 0].numpy()
        gauss_samples = gauss.actor(torch.zeros(400, 1))[0][:, 0].numpy()
    low, high = near_modes(flow_samples)
    between = float(np.mean(np.abs(flow_samples) < 0.3))
    print(f'flow: {low:.2f} / {high:.2f} near the modes, {between:.2f} between; '
          f'gaussian: {near_modes(gauss_samples)}')
    assert low > 0.3 and high > 0.3 and low + high > 0.85 and between < 0.1
    assert sum(near_modes(gauss_samples)) < 0.3  # one Gaussian puts its mass between them
    assert flow.actor.act_chunk(np.zeros(1, np.float32)).shape == (1, 1)
    assert flow.actor.act(np.zeros(1, np.float32)).shape == (1,)


def test_sac_flow_learns_a_bandit_through_the_unrolled_flow():
    """One-step task: the reward peaks at a = 0.5 * s; Q is the reward, and the flow actor
    must move its actions there by the critic's gradient alone."""
    cfg = SACFlowConfig(actor=FlowActorConfig(hidden_sizes=(64, 64), step_noise=True),
                        critic_hidden_sizes=(64, 64), batch_size=64, init_temperature=0.01,
                        actor_lr=3e-3, critic_lr=3e-3)
    algo = SACFlow(1, 1, cfg, seed=0)
    g = torch.Generator().manual_seed(0)
    obs = torch.rand(4096, 1, generator=g) * 2 - 1
    action = torch.rand(4096, 1, generator=g) * 2 - 1
    reward = -(action - 0.5 * obs) ** 2
    test_obs = torch.linspace(-1, 1, 21)[:, None]

    def error() -> float:
        with torch.no_grad():
            return float((algo.actor(test_obs)[2] - 0.5 * test_obs).abs().mean())

    before = error()
    for _ in range(200):
        idx = torch.randint(0, 4096, (64,), generator=g)
        metrics = algo.update({'obs': obs[idx], 'action': action[idx], 'reward': reward[idx],
                               'next_obs': obs[idx], 'terminated': torch.ones(64)})
    print(f'mean |a - a*|: {before:.3f} -> {error():.3f}')
    assert error() < 0.1 < before
    assert np.isfinite(metrics['train/entropy'])


def test_sac_flow_config_names_what_to_fix():
    cfg = build_config(SACFlowConfig, {'actor': {'step_noise': True, 'flow_steps': 6}})
    assert isinstance(cfg.actor, FlowActorConfig) and cfg.actor.flow_steps == 6  # from YAML
    with pytest.raises(ValueError, match='step_noise'):
        SACFlowConfig(actor=FlowActorConfig())
    with pytest.raises(ValueError, match="'flow' actor"):
        SACFlowConfig(actor=ActorConfig())
    with pytest.raises(ValueError, match='step_noise: true'):
        FlowActor(FlowActorConfig(), 2, 1)(torch.zeros(1, 2))


def vla_batch(n: int, g: torch.Generator, cfg: VLATinyConfig) -> dict[str, torch.Tensor]:
    """Random images and states; 'move left' means a chunk of -0.5, 'move right' of +0.5."""
    right = torch.randint(0, 2, (n,), generator=g).bool()
    words = [tokenize('move right' if r else 'move left', cfg.max_tokens) for r in right]
    chunk = torch.where(right[:, None, None], 0.5, -0.5).expand(n, cfg.chunk, 2)
    return {'obs': torch.randn(n, 3, generator=g),
            'image': torch.randint(0, 256, (n, *cfg.image_shape), generator=g,
                                   dtype=torch.uint8),
            'instruction': torch.as_tensor(np.stack(words)), 'action_chunk': chunk}


@pytest.mark.parametrize('head', ['regression', 'flow'])
def test_vla_tiny_trains_and_its_chunks_follow_the_instruction(head):
    cfg = VLATinyConfig(hidden_sizes=(64,), embed_dim=32, chunk=4, head=head)
    bc = BC(3, 2, BCConfig(actor=cfg, lr=3e-3), seed=0)
    assert bc.batch_keys == ('obs', 'image', 'instruction', 'action_chunk')
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        bc.update(vla_batch(32, g, cfg))
    rng = np.random.default_rng(0)
    state, frame = rng.normal(size=3), {'front': rng.integers(0, 256, (32, 32, 3), np.uint8)}
    left = bc.actor.act_chunk(state, True, instruction='move left', images=frame)
    right = bc.actor.act_chunk(state, True, instruction='move right', images=frame)
    assert left.shape == right.shape == (4, 2) and left.dtype == np.float32
    assert left.mean() < -0.3 and right.mean() > 0.3
    assert bc.actor.chunk_horizon == 4 and bc.actor.takes_language and bc.actor.takes_images
    again = unpack_actor(pack_actor(bc.actor))  # what a policy process rebuilds
    assert isinstance(again, VLATiny) and again.cfg == cfg
    np.testing.assert_allclose(
        again.act_chunk(state, True, instruction='move right', images=frame), right, atol=1e-6)


def test_vla_tiny_reads_the_learners_batch_form():
    """Frames inside obs as 'image_<camera>' [B, H, W, 3] and the instruction as the store's
    zero-padded UTF-8 bytes give the same loss as channels-first frames and tokens."""
    cfg = VLATinyConfig(hidden_sizes=(16,), embed_dim=8, head='regression', camera='wrist')
    bc = BC(3, 2, BCConfig(actor=cfg), seed=0)
    batch = vla_batch(8, torch.Generator().manual_seed(0), cfg)
    raw = (batch['instruction'] - 1).clamp_min(0).to(torch.uint8)  # tokens back to bytes
    learner_form = {'obs': {'state': batch['obs'], 'image_front': torch.zeros(8, 32, 32, 3),
                            'image_wrist': batch['image'].permute(0, 2, 3, 1)},
                    'instruction': torch.cat([raw, torch.zeros(8, 32, dtype=torch.uint8)], 1),
                    'action_chunk': batch['action_chunk']}
    with torch.no_grad():
        expected, got = float(bc.loss(batch)), float(bc.loss(learner_form))
    assert got == pytest.approx(expected, rel=1e-6)


def test_vla_tiny_errors_name_the_field():
    actor = VLATiny(VLATinyConfig(hidden_sizes=(16,), embed_dim=8), 3, 2)
    frame = {'front': np.zeros((32, 32, 3), np.uint8)}
    with pytest.raises(ValueError, match='serve it through act_chunk'):
        actor.act(np.zeros(3))
    with pytest.raises(ValueError, match='image_shape'):
        actor.act_chunk(np.zeros(3), instruction='go',
                        images={'front': np.zeros((64, 64, 3), np.uint8)})
    with pytest.raises(ValueError, match=r"cameras \['front', 'wrist'\].*name it"):
        actor.act_chunk(np.zeros(3), instruction='go', images={**frame, 'wrist': frame['front']})
    with pytest.raises(ValueError, match='max_tokens=32'):
        actor.act_chunk(np.zeros(3), instruction='x' * 33, images=frame)
    with pytest.raises(ValueError, match='bc or hg_dagger'):
        actor(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="head must be 'flow' or 'regression'"):
        VLATinyConfig(head='diffusion')


def test_flow_actor_round_trips_through_a_weights_blob():
    actor = FlowActor(FlowActorConfig(hidden_sizes=(16,), chunk=3, flow_steps=2), 5, 2)
    again = unpack_actor(pack_actor(actor))
    assert isinstance(again, FlowActor) and again.cfg == actor.cfg
    obs = np.arange(5, dtype=np.float32)
    np.testing.assert_allclose(again.act_chunk(obs, deterministic=True),
                               actor.act_chunk(obs, deterministic=True), atol=1e-6)
    assert again.act_chunk(obs).shape == (3, 2) and again.act(obs).shape == (2,)


def test_unknown_actor_types_are_named_with_the_known_ones():
    with pytest.raises(ValueError, match=r"type 'pi0' is not a known policy type; known: "
                                         r"\[.*'flow'.*'vla_tiny'"):
        actor_config_from_json({'type': 'pi0'})
    with pytest.raises(ValueError, match="'vla_tiny'"):
        FlowActorConfig(type='transformer')


def test_lerobot_policy_errors_say_where_to_put_weights_and_what_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"\['config.json', 'model.safetensors'\] "
                                                'missing. Put the files'):
        LeRobotChunkActor(tmp_path / 'smolvla', 'smolvla')
    for name in ('config.json', 'model.safetensors'):
        (tmp_path / name).write_bytes(b'{}')
    assert check_weights(tmp_path) == tmp_path
    try:
        import lerobot  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r'LeRobot is not installed.*Python >= 3\.12'):
            LeRobotChunkActor(tmp_path, 'smolvla')
    else:
        pytest.skip('lerobot is installed here: the missing-package error cannot show')
