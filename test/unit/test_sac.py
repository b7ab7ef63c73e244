"""Unit tests of the actor (realrl_policy.models) and SAC (realrl_learner.sac)."""

import dataclasses
import io
import math

import numpy as np
import pytest
import torch

from realrl_learner.adam_step import adam_step
from realrl_learner.sac import SAC, SACConfig, TwinQ
from realrl_policy.models import (
    ActorConfig,
    GaussianActor,
    actor_from_bytes,
    actor_to_bytes,
    mlp,
)

torch.set_num_threads(1)

OBS_DIM, ACT_DIM = 17, 3
SMALL = SACConfig(actor=ActorConfig(hidden_sizes=(32, 32)), critic_hidden_sizes=(32, 32),
                  batch_size=64)


def fixed_batch(n: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, OBS_DIM, generator=g)
    return {
        'obs': obs,
        'action': torch.rand(n, ACT_DIM, generator=g) * 2 - 1,
        'reward': -obs[:, :3].norm(dim=1),  # [B] is accepted as well as [B, 1]
        'next_obs': obs + 0.1 * torch.randn(n, OBS_DIM, generator=g),
        'terminated': (torch.rand(n, generator=g) < 0.1).float(),
    }


# ------------------------------------------------------------------- actor
def test_act_gives_bounded_actions_of_the_right_shape():
    actor = GaussianActor(ActorConfig(), OBS_DIM, ACT_DIM)
    obs = np.random.default_rng(0).normal(size=OBS_DIM).astype(np.float32)
    a = actor.act(obs, deterministic=False)
    assert a.shape == (ACT_DIM,) and a.dtype == np.float32
    assert np.all(np.abs(a) < 1)
    np.testing.assert_array_equal(actor.act(obs, deterministic=True),
                                  actor.act(obs, deterministic=True))
    with pytest.raises(ValueError, match='expects 17'):
        actor.act(np.zeros(5), deterministic=True)


def test_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    actor = GaussianActor(ActorConfig(hidden_sizes=(16,)), OBS_DIM, ACT_DIM)
    obs = torch.randn(256, OBS_DIM)
    torch.manual_seed(1)
    action, log_prob, _ = actor(obs)
    mean, log_std = actor._mean_log_std(obs)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()),
        [torch.distributions.TanhTransform(cache_size=1)])
    # Recompute from the pre-tanh sample to avoid atanh round-off near +-1.
    torch.manual_seed(1)
    pre = mean + log_std.exp() * torch.randn_like(mean)
    expected = (dist.base_dist.log_prob(pre)
                - torch.distributions.TanhTransform().log_abs_det_jacobian(pre, action)).sum(-1)
    torch.testing.assert_close(log_prob.squeeze(-1), expected, atol=1e-4, rtol=1e-4)


def test_actor_bytes_round_trip_is_exact():
    actor = GaussianActor(ActorConfig(hidden_sizes=(64, 64)), OBS_DIM, ACT_DIM)
    clone = actor_from_bytes(ActorConfig(hidden_sizes=(64, 64)), OBS_DIM, ACT_DIM,
                             actor_to_bytes(actor))
    obs = np.random.default_rng(1).normal(size=(10, OBS_DIM)).astype(np.float32)
    for o in obs:
        np.testing.assert_array_equal(actor.act(o, True), clone.act(o, True))
        torch.manual_seed(3)
        a = actor.act(o, False)
        torch.manual_seed(3)
        np.testing.assert_array_equal(a, clone.act(o, False))


def test_actor_bytes_must_fit_the_config():
    data = actor_to_bytes(GaussianActor(ActorConfig(hidden_sizes=(64, 64)), OBS_DIM, ACT_DIM))
    with pytest.raises(ValueError, match='hidden_sizes'):
        actor_from_bytes(ActorConfig(hidden_sizes=(64,)), OBS_DIM, ACT_DIM, data)
    with pytest.raises(ValueError, match='shape'):
        actor_from_bytes(ActorConfig(hidden_sizes=(32, 32)), OBS_DIM, ACT_DIM, data)
    with pytest.raises(ValueError, match='shape'):
        actor_from_bytes(ActorConfig(hidden_sizes=(64, 64)), OBS_DIM + 1, ACT_DIM, data)


@pytest.mark.parametrize('data', [b'', b'not an archive', b'PK\x03\x04junk'])
def test_actor_bytes_reject_garbage(data):
    with pytest.raises(ValueError, match='npz'):
        actor_from_bytes(ActorConfig(), OBS_DIM, ACT_DIM, data)


def test_actor_bytes_never_unpickle():
    buf = io.BytesIO()
    np.savez(buf, evil=np.array([object()], dtype=object))
    actor_data = actor_to_bytes(GaussianActor(ActorConfig(hidden_sizes=(8,)), OBS_DIM, ACT_DIM))
    with pytest.raises(ValueError):
        actor_from_bytes(ActorConfig(hidden_sizes=(8,)), OBS_DIM, ACT_DIM, buf.getvalue())
    # Sanity: the same path accepts real weights.
    actor_from_bytes(ActorConfig(hidden_sizes=(8,)), OBS_DIM, ACT_DIM, actor_data)


@pytest.mark.parametrize('kwargs, field', [
    ({'hidden_sizes': ()}, 'hidden_sizes'),
    ({'hidden_sizes': (0,)}, 'hidden_sizes'),
    ({'activation': 'gelu6'}, 'activation'),
    ({'log_std_min': 2.0, 'log_std_max': -5.0}, 'log_std_min'),
    ({'type': 'transformer'}, r"type 'transformer' is not a known policy type; known: \[.*'mlp'"),
])
def test_actor_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ActorConfig(**kwargs)


# --------------------------------------------------------------------- SAC
def test_update_returns_namespaced_finite_metrics():
    sac = SAC(OBS_DIM, ACT_DIM, SMALL, seed=0)
    metrics = sac.update(fixed_batch())
    for key in ('train/critic_loss', 'train/actor_loss', 'train/alpha', 'train/entropy',
                'train/q_mean', 'train/updates'):
        assert key in metrics and math.isfinite(metrics[key]), key
    assert all(k.startswith('train/') for k in metrics)
    assert sac.updates == 1


def test_updates_reduce_critic_loss_on_a_fixed_batch():
    sac = SAC(OBS_DIM, ACT_DIM, SMALL, seed=0)
    batch = fixed_batch()
    losses = [sac.update(batch)['train/critic_loss'] for _ in range(150)]
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])


def test_temperature_moves_toward_target_entropy():
    cfg = SACConfig(actor=SMALL.actor, critic_hidden_sizes=(32, 32), target_entropy=-10.0)
    sac = SAC(OBS_DIM, ACT_DIM, cfg, seed=0)
    batch = fixed_batch()
    alpha0 = sac.alpha
    for _ in range(20):
        sac.update(batch)
    assert sac.alpha < alpha0  # entropy is above -10, so alpha shrinks


def test_state_dict_round_trip_resumes_identically(tmp_path):
    a = SAC(OBS_DIM, ACT_DIM, SMALL, seed=0)
    for i in range(5):
        a.update(fixed_batch(seed=i))
    path = tmp_path / 'sac.pt'
    torch.save(a.state_dict(), path)
    b = SAC(OBS_DIM, ACT_DIM, SMALL, seed=123)
    b.load_state_dict(torch.load(path, weights_only=True))
    assert b.updates == a.updates and b.alpha == a.alpha
    batch = fixed_batch(seed=99)
    torch.manual_seed(7)
    ma = a.update(batch)
    torch.manual_seed(7)
    mb = b.update(batch)
    assert ma == mb
    for pa, pb in zip(a.critic_target.parameters(), b.critic_target.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_a_checkpoint_from_before_the_fused_critics_resumes_exactly(tmp_path):
    """Checkpoints once held the twin critics as two MLPs 'q1.*', 'q2.*' with Adam over their
    12 tensors: loading one gives the same Q values and the same next Adam step."""
    torch.manual_seed(5)
    old = torch.nn.ModuleDict({q: mlp(OBS_DIM + ACT_DIM, (32, 32), 1, 'relu')
                               for q in ('q1', 'q2')})
    opt = torch.optim.Adam(old.parameters(), lr=SMALL.critic_lr)
    batch = fixed_batch()
    x = torch.cat([batch['obs'], batch['action']], dim=1)

    def step(optimizer, q1, q2):
        loss = (q1 - batch['reward'][:, None]).square().mean() + q2.square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step(opt, old['q1'](x), old['q2'](x))
    exact = dataclasses.replace(SMALL, critic_matmul_dtype='float32')  # as the old critics
    state = SAC(OBS_DIM, ACT_DIM, exact).state_dict()
    state.update(critic=old.state_dict(), critic_target=old.state_dict(),
                 critic_opt=opt.state_dict())
    torch.save(state, tmp_path / 'old.pt')
    sac = SAC(OBS_DIM, ACT_DIM, exact, seed=1)
    sac.load_state_dict(torch.load(tmp_path / 'old.pt', weights_only=True))
    for net in (sac.critic, sac.critic_target):
        q1, q2 = net(batch['obs'], batch['action'])
        torch.testing.assert_close(q1, old['q1'](x), rtol=0, atol=1e-6)
        torch.testing.assert_close(q2, old['q2'](x), rtol=0, atol=1e-6)
    step(opt, old['q1'](x), old['q2'](x))
    step(sac.critic_opt, *sac.critic(batch['obs'], batch['action']))
    q1, q2 = sac.critic(batch['obs'], batch['action'])
    torch.testing.assert_close(q1, old['q1'](x), rtol=0, atol=1e-5)
    torch.testing.assert_close(q2, old['q2'](x), rtol=0, atol=1e-5)


def test_bfloat16_critics_give_the_float32_values_to_bfloat16_rounding():
    batch = fixed_batch()
    q = {}
    for dtype in ('float32', 'bfloat16'):
        sac = SAC(OBS_DIM, ACT_DIM, dataclasses.replace(SMALL, critic_matmul_dtype=dtype))
        q[dtype] = torch.cat(sac.critic(batch['obs'], batch['action']))
        assert q[dtype].dtype == torch.float32
    error = (q['bfloat16'] - q['float32']).abs().max()
    assert 0 < error < 0.02 * q['float32'].abs().max()  # rounded, not another network


def test_bfloat16_actor_gives_the_float32_outputs_to_bfloat16_rounding():
    batch = fixed_batch()
    out = {}
    for dtype in ('float32', 'bfloat16'):
        sac = SAC(OBS_DIM, ACT_DIM, dataclasses.replace(SMALL, actor_matmul_dtype=dtype))
        torch.manual_seed(3)  # the same sampling noise for both
        out[dtype] = torch.cat(sac.actor(batch['obs'])[:2], dim=1)
        assert out[dtype].dtype == torch.float32
    error = (out['bfloat16'] - out['float32']).abs().max()
    assert 0 < error < 0.02 * out['float32'].abs().max()  # rounded, not another network


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_hand_written_critic_backward_gives_autograds_gradients(dtype):
    torch.manual_seed(0)
    q = TwinQ(OBS_DIM, ACT_DIM, (16, 32, 8), 'relu', dtype)
    batch = fixed_batch()
    action = batch['action'].clone().requires_grad_(True)
    target = batch['reward'][:, None]

    def gradients(values: torch.Tensor) -> list[torch.Tensor]:
        loss = (values[0] - target).square().mean() + values[1].square().mean()
        return torch.autograd.grad(loss, [*q.parameters(), action])

    x = torch.cat([batch['obs'], action], dim=1).to(dtype).expand(2, -1, -1)
    *hidden, (w_out, b_out) = zip(q.weights, q.biases)
    for weight, bias in hidden:  # the layers as plain autograd operations
        x = torch.relu(torch.baddbmm(bias.to(dtype), x, weight.to(dtype)))
    expected = gradients((x.float() * w_out.transpose(1, 2)).sum(-1, keepdim=True) + b_out)
    got = gradients(torch.stack(q(batch['obs'], action)))
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_lean_adam_step_is_adams_step():
    torch.manual_seed(0)
    shapes = [(2, 5, 7), (2, 1, 7), ()]
    params = [[torch.nn.Parameter(torch.randn(s)) for s in shapes] for _ in range(2)]
    for a, b in zip(*params):
        b.data.copy_(a.data)
    opts = [torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.95), fused=True) for p in params]
    for step in range(4):
        grads = [torch.randn(s) for s in shapes]
        for opt, stepper in zip(opts, (torch.optim.Adam.step, adam_step)):
            for p, g in zip(opt.param_groups[0]['params'], grads):
                p.grad = g.clone()
            stepper(opt)
        for a, b in zip(*params):
            assert torch.equal(a, b), step  # the same kernel on the same values
    assert str(opts[0].state_dict()) == str(opts[1].state_dict())
    assert float(opts[1].state_dict()['state'][0]['step']) == 4


def test_lean_adam_step_still_runs_the_optimisers_step_hooks():
    """The data-parallel ranks average gradients in a step pre-hook and re-arm in a post-hook:
    adam_step must not skip them."""
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([p], fused=True)
    p.grad = torch.ones(3)
    adam_step(opt)  # the first step makes the state
    calls = []
    opt.register_step_pre_hook(lambda *_: calls.append('pre'))
    opt.register_step_post_hook(lambda *_: calls.append('post'))
    p.grad = torch.ones(3)
    adam_step(opt)
    assert calls == ['pre', 'post'] and float(opt.state[p]['step']) == 2


def test_checkpoint_for_other_dims_is_rejected():
    state = SAC(OBS_DIM, ACT_DIM, SMALL).state_dict()
    with pytest.raises(ValueError, match='obs_dim'):
        SAC(OBS_DIM + 1, ACT_DIM, SMALL).load_state_dict(state)


def test_bad_batches_are_rejected():
    sac = SAC(OBS_DIM, ACT_DIM, SMALL)
    batch = fixed_batch()
    with pytest.raises(ValueError, match='terminated'):
        sac.update({k: v for k, v in batch.items() if k != 'terminated'})
    with pytest.raises(ValueError, match='action'):
        sac.update({**batch, 'action': batch['action'][:, :2]})
    with pytest.raises(ValueError, match='obs'):
        sac.update({**batch, 'obs': batch['obs'][:, :5]})


@pytest.mark.parametrize('kwargs, field', [
    ({'gamma': 1.0}, 'gamma'),
    ({'tau': 0.0}, 'tau'),
    ({'actor_lr': -1e-3}, 'actor_lr'),
    ({'batch_size': 0}, 'batch_size'),
    ({'critic_hidden_sizes': ()}, 'critic_hidden_sizes'),
    ({'init_temperature': 0.0}, 'init_temperature'),
    ({'learning_starts': -1}, 'learning_starts'),
    ({'updates_per_step': 0.0}, 'updates_per_step'),
    ({'actor_update_interval': 0}, 'actor_update_interval'),
    ({'max_grad_norm': 0.0}, 'max_grad_norm'),
    ({'critic_matmul_dtype': 'float16'}, 'critic_matmul_dtype'),
    ({'actor_matmul_dtype': 'float16'}, 'actor_matmul_dtype'),
    ({'actor': (256, 256)}, 'actor'),
])
def test_sac_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SACConfig(**kwargs)


# ------------------------------------------------------------------- smoke
def test_sac_on_reach_smoke():
    """The whole loop (sim, reward, replay, SAC, weight transfer) runs for a tiny budget."""
    from realrl_driver.robots.mujoco_arm.sim import MujocoArmSim
    from realrl_reward.reach_reward import ReachReward

    sim = MujocoArmSim(seed=0)
    reward_fn = ReachReward()
    cfg = SACConfig(batch_size=64, learning_starts=100, updates_per_step=1.0)
    sac = SAC(sim.state_dim, sim.action_dim, cfg, seed=0)
    policy = actor_from_bytes(cfg.actor, sim.state_dim, sim.action_dim, actor_to_bytes(sac.actor))
    rng = np.random.default_rng(0)
    rows = {k: [] for k in ('obs', 'action', 'reward', 'next_obs', 'terminated')}
    obs, ep_len, episodes, metrics = sim.reset(0), 0, 0, {}
    for step in range(1, 301):
        if step <= cfg.learning_starts:
            action = rng.uniform(-1, 1, sim.action_dim).astype(np.float32)
        else:
            action = policy.act(obs, deterministic=False)
        next_obs = sim.apply(action)
        reward, success = reward_fn.label(next_obs, sim.observation_layout)
        for k, v in zip(rows, (obs, action, reward, next_obs, float(success))):
            rows[k].append(v)
        obs, ep_len = next_obs, ep_len + 1
        if success or ep_len == 50:
            obs, ep_len, episodes = sim.reset(), 0, episodes + 1
        if step >= cfg.learning_starts:
            idx = rng.integers(0, len(rows['obs']), cfg.batch_size)
            batch = {k: torch.as_tensor(np.asarray(v, dtype=np.float32)[idx])
                     for k, v in rows.items()}
            metrics = sac.update(batch)
        if step % 100 == 0:  # the learner publishes weights, the policy swaps them in
            policy = actor_from_bytes(cfg.actor, sim.state_dim, sim.action_dim,
                                      actor_to_bytes(sac.actor))
    assert episodes >= 5
    assert sac.updates == 201
    assert all(math.isfinite(v) for v in metrics.values())


# ------------------------------------------------------------- policy types
def test_the_weights_blob_carries_the_actor_type_and_rebuilds_it():
    import json
    import struct

    from realrl_policy.models import build_actor
    from realrl_policy.weights_blob import MAGIC, pack_actor, unpack_actor
    actor = build_actor(ActorConfig(type='mlp', hidden_sizes=(8,)), OBS_DIM, ACT_DIM)
    assert type(actor) is GaussianActor  # 'mlp' is registered by realrl_policy's setup.py
    blob = pack_actor(actor)
    (n,) = struct.unpack_from('<I', blob, len(MAGIC))
    header = json.loads(blob[len(MAGIC) + 4:len(MAGIC) + 4 + n])
    assert header['actor']['type'] == 'mlp'
    obs = np.ones(OBS_DIM, np.float32)
    np.testing.assert_array_equal(unpack_actor(blob).act(obs, True), actor.act(obs, True))

    def with_actor_header(actor_header: dict) -> bytes:
        new = json.dumps(dict(header, actor=actor_header)).encode()
        return MAGIC + struct.pack('<I', len(new)) + new + blob[len(MAGIC) + 4 + n:]
    # blobs from before actor types: an MLP
    old = {k: v for k, v in header['actor'].items() if k != 'type'}
    assert type(unpack_actor(with_actor_header(old))) is GaussianActor
    # a type this process has no package for is refused, naming the known ones
    with pytest.raises(ValueError, match=r"type 'diffusion' is not a known policy type; known: "):
        unpack_actor(with_actor_header(dict(header['actor'], type='diffusion')))


def test_sac_builds_the_registered_actor_type():
    sac = SAC(OBS_DIM, ACT_DIM, SMALL)
    assert type(sac.actor) is GaussianActor and sac.cfg.actor.type == 'mlp'
