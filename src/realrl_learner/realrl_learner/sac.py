"""Soft Actor-Critic (twin Q, target critics, learned temperature) in PyTorch; no ROS.

The 'sac' algorithm plug-in (``realrl_learner.algorithms``). `SAC.update` does one gradient
step on a batch; how often to call it (learning_starts, updates_per_step) is the caller's
loop, configured here so that all hyperparameters live in one place. The actor is of the
registered type ``actor.type`` (`realrl_policy.models`; 'mlp' is `GaussianActor`), the
network the policy process runs; an image actor ('cnn') shares its encoder with the critics
(``realrl_learner.algorithms.networks``).
"""

import copy
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from realrl_learner.algorithms import ObservationSpec
from realrl_learner.algorithms.large import optimizer_step
from realrl_learner.algorithms.networks import (
    actor_head,
    actor_parameters,
    batch_obs,
    critic_head,
    critic_input_dim,
    encode_pair,
    make_actor,
    target_critic_state,
    with_encoder,
)
from realrl_learner.critics import TwinQ
from realrl_policy.models import ActorConfig
from realrl_policy.precision import cpu_has_bf16

BATCH_KEYS = ('obs', 'action', 'reward', 'next_obs', 'terminated')
MATMUL_DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16}
MASK_KEY = 'action_mask'
"""Optional batch key: [B, act_dim] of 0/1, the action values each row's robot has (robots of
several kinds share the networks). Masked values are zero in the critics' input and count
nothing in the log-probability; the entropy target is minus the mean number of real values."""


@dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters."""

    type: str = 'sac'
    """The algorithm (``algorithm.type`` in the learner's config)."""
    gamma: float = 0.9
    """Discount factor. The reach task is short (tens of steps), so a short horizon
    learns faster and is enough."""
    tau: float = 0.01
    """Polyak rate of the target critics per update (target += tau * (online - target))."""
    actor_lr: float = 1e-3
    """Adam learning rate of the actor."""
    critic_lr: float = 1e-3
    """Adam learning rate of the twin critics."""
    alpha_lr: float = 1e-3
    """Adam learning rate of log(temperature)."""
    batch_size: int = 128
    """Transitions per gradient step."""
    actor: ActorConfig = field(default_factory=ActorConfig)
    """Actor network; the policy process must build its actor with the same config."""
    critic_hidden_sizes: tuple[int, ...] = (128, 128)
    """Widths of the hidden layers of each critic MLP."""
    init_temperature: float = 0.1
    """Initial entropy temperature alpha."""
    target_entropy: float | None = None
    """Entropy the temperature is tuned toward; None means -act_dim."""
    learning_starts: int = 250
    """Environment steps (random actions) collected before the first update."""
    updates_per_step: float = 2.0
    """Gradient updates per environment step once learning started (the UTD ratio);
    an asynchronous learner paces itself to this against the replay store's growth."""
    actor_update_interval: int = 1
    """Update the actor and temperature every this many critic updates."""
    max_grad_norm: float | None = None
    """Clip each network's gradient to this norm; None disables clipping."""
    critic_matmul_dtype: str = 'auto'
    """Precision of the critics' hidden-layer matrix products: 'float32', 'bfloat16' (about
    twice as fast on CPUs with bf16 instructions; weights, output layer, losses and Adam stay
    float32, and the learning tests pass with it) or 'auto' (bfloat16 where the CPU has bf16
    instructions, avx512_bf16 or amx_bf16, else float32)."""
    actor_matmul_dtype: str = 'auto'
    """Precision of the actor's products between hidden layers in the learner (the actor
    types 'mlp' and 'cnn'; others stay float32): values as critic_matmul_dtype. Its input and
    output layers stay float32, and the policy process always acts in float32."""

    def __post_init__(self):
        if not 0 <= self.gamma < 1:
            raise ValueError(f'gamma must be in [0, 1), got {self.gamma}')
        if not 0 < self.tau <= 1:
            raise ValueError(f'tau must be in (0, 1], got {self.tau}')
        for name in ('actor_lr', 'critic_lr', 'alpha_lr', 'init_temperature',
                     'updates_per_step'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a positive number, got {value}')
        if self.batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {self.batch_size}')
        if not isinstance(self.actor, ActorConfig):
            raise ValueError(f'actor must be an ActorConfig, got {type(self.actor).__name__}')
        if not self.critic_hidden_sizes or any(int(h) < 1 for h in self.critic_hidden_sizes):
            raise ValueError(f'critic_hidden_sizes must be one or more positive widths, got '
                             f'{self.critic_hidden_sizes}')
        if self.learning_starts < 0:
            raise ValueError(f'learning_starts must be >= 0, got {self.learning_starts}')
        if self.actor_update_interval < 1:
            raise ValueError(f'actor_update_interval must be >= 1, got '
                             f'{self.actor_update_interval}')
        for name in ('critic_matmul_dtype', 'actor_matmul_dtype'):
            if getattr(self, name) not in (*MATMUL_DTYPES, 'auto'):
                raise ValueError(f"{name} must be 'auto' or one of {sorted(MATMUL_DTYPES)}, "
                                 f'got {getattr(self, name)!r}')
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f'max_grad_norm must be > 0 or None, got {self.max_grad_norm}')


def critic_dtype(name: str) -> torch.dtype:
    """The torch dtype of a critic_matmul_dtype setting."""
    if name == 'auto':
        return torch.bfloat16 if cpu_has_bf16() else torch.float32
    return MATMUL_DTYPES[name]


class SAC:
    """Networks, optimisers and the update rule of Soft Actor-Critic.

    `obs` is the observation spec (or the state size, for state-only observations). `seed`
    seeds torch's global RNG (network init and the actor's sampling noise).
    """

    config_class = SACConfig
    batch_keys = BATCH_KEYS

    def __init__(self, obs: ObservationSpec | int, act_dim: int, cfg: SACConfig = SACConfig(),
                 seed: int = 0):
        self.cfg = cfg
        self.obs_spec = obs if isinstance(obs, ObservationSpec) else ObservationSpec(int(obs))
        self.obs_dim = self.obs_spec.state_dim
        self.act_dim = act_dim
        torch.manual_seed(seed)
        self.actor = make_actor(cfg.actor, self.obs_spec, act_dim)
        self.critic = with_encoder(self.actor, TwinQ(critic_input_dim(self.actor), act_dim,
                                                     cfg.critic_hidden_sizes,
                                                     cfg.actor.activation,
                                                     critic_dtype(cfg.critic_matmul_dtype)))
        # the heads the features feed (the actor's and critics' own for a state actor)
        self.actor_head, self.critic_head = actor_head(self.actor), critic_head(self.critic)
        if hasattr(self.actor_head, 'hidden_dtype'):  # GaussianActor (also the cnn's head)
            self.actor_head.hidden_dtype = critic_dtype(cfg.actor_matmul_dtype)
        self.critic_target = copy.deepcopy(self.critic_head).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(cfg.init_temperature), requires_grad=True)
        self.target_entropy = (-float(act_dim) if cfg.target_entropy is None
                               else float(cfg.target_entropy))
        # fused: one kernel steps all of an optimiser's tensors (Adam's rule, unchanged).
        self.actor_opt = torch.optim.Adam(actor_parameters(self.actor), lr=cfg.actor_lr,
                                          fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr,
                                           fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr, fused=True)
        self._critic_params = list(self.critic_head.parameters())
        self._target_params = list(self.critic_target.parameters())
        self.updates = 0
        self._last_actor_metrics: dict[str, float] = {}

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One gradient step on `batch` (keys BATCH_KEYS, optionally MASK_KEY, leading
        dimension B); returns metrics namespaced 'train/...'."""
        obs, action, reward, next_obs, terminated, mask = self._unpack(batch)
        cfg = self.cfg
        alpha = self.log_alpha.exp().detach()

        # the image encoder runs once on obs (with gradients) and once on next_obs (without)
        x, x_next = encode_pair(self.actor, obs, next_obs)
        with torch.no_grad():
            target_q = self.td_target(reward, x_next, terminated, mask, alpha)
        q1, q2 = self.critic_head(x, action)
        critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        optimizer_step(self.critic_opt, critic_loss, self.critic.parameters(),
                       self.cfg.max_grad_norm)

        if self.updates % cfg.actor_update_interval == 0:
            self._last_actor_metrics = self._update_actor_and_alpha(x.detach(), mask)

        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._critic_params, cfg.tau)
        self.updates += 1
        return {
            'train/critic_loss': float(critic_loss.detach()),
            'train/q_mean': float(q1.detach().mean()),
            'train/target_q_mean': float(target_q.mean()),
            **self._last_actor_metrics,
            'train/updates': float(self.updates),
        }

    def td_target(self, reward: torch.Tensor, next_obs: torch.Tensor,
                  terminated: torch.Tensor, mask: torch.Tensor | None,
                  alpha: torch.Tensor) -> torch.Tensor:
        """The critics' regression target: reward plus the discounted soft value of the next
        state under the current policy, by the smaller of the twin target critics (clipped
        double Q). next_obs are the next states' features (``encode_pair``; the states for a
        state actor). The learning tests replace it with wrong targets to show they fail."""
        next_action, next_logp, _ = self.actor_head(next_obs, mask)
        q1_t, q2_t = self.critic_target(next_obs, next_action)
        next_v = torch.min(q1_t, q2_t) - alpha * next_logp
        return reward + self.cfg.gamma * (1.0 - terminated) * next_v

    def _update_actor_and_alpha(self, x: torch.Tensor, mask: torch.Tensor | None
                                ) -> dict[str, float]:
        """x: the observations' features, detached (the actor loss never moves the encoder)."""
        alpha = self.log_alpha.exp().detach()
        self.critic_head.requires_grad_(False)  # the actor loss must not train the critics
        new_action, logp, _ = self.actor_head(x, mask)
        q1, q2 = self.critic_head(x, new_action)
        actor_loss = (alpha * logp - torch.min(q1, q2)).mean()
        optimizer_step(self.actor_opt, actor_loss, self.actor.parameters(),
                       self.cfg.max_grad_norm)
        self.critic_head.requires_grad_(True)

        entropy = -logp.detach().mean()
        target = self.target_entropy
        if mask is not None and self.cfg.target_entropy is None:
            target = -float(mask.sum(dim=1).mean())
        alpha_loss = self.log_alpha.exp() * (entropy - target)
        optimizer_step(self.alpha_opt, alpha_loss)
        return {
            'train/actor_loss': float(actor_loss.detach()),
            'train/alpha': self.alpha,
            'train/alpha_loss': float(alpha_loss.detach()),
            'train/entropy': float(entropy),
        }

    def _unpack(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise ValueError(f'batch lacks {missing}; it needs keys {list(BATCH_KEYS)}')
        obs = batch_obs(batch['obs'], self.obs_spec, 'obs')
        next_obs = batch_obs(batch['next_obs'], self.obs_spec, 'next_obs')
        n = len(obs['state'] if isinstance(obs, dict) else obs)
        out = {'obs': obs, 'next_obs': next_obs}
        for key, width in (('action', self.act_dim), ('reward', 1), ('terminated', 1)):
            t = torch.as_tensor(batch[key], dtype=torch.float32).reshape(n, -1)
            if t.shape[1] != width:
                raise ValueError(f'batch[{key!r}] has {t.shape[1]} values per row, expected '
                                 f'{width}')
            out[key] = t
        mask = batch.get(MASK_KEY)
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.float32)
            if tuple(mask.shape) != (n, self.act_dim):
                raise ValueError(f'batch[{MASK_KEY!r}] must be [B, {self.act_dim}], got '
                                 f'{tuple(mask.shape)}')
        return (obs, out['action'], out['reward'], next_obs, out['terminated'], mask)

    # ------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        """Everything needed to resume training: networks, optimisers, temperature."""
        return {
            'obs_dim': self.obs_dim,
            'act_dim': self.act_dim,
            'updates': self.updates,
            'actor': self.actor.state_dict(),
            'critic': self.critic.state_dict(),
            'critic_target': self.critic_target.state_dict(),
            'log_alpha': self.log_alpha.detach().clone(),
            'actor_opt': self.actor_opt.state_dict(),
            'critic_opt': self.critic_opt.state_dict(),
            'alpha_opt': self.alpha_opt.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict` output (e.g. from torch.load(..., weights_only=True))."""
        if (state.get('obs_dim'), state.get('act_dim')) != (self.obs_dim, self.act_dim):
            raise ValueError(f'checkpoint is for obs_dim {state.get("obs_dim")}, act_dim '
                             f'{state.get("act_dim")}; this SAC has {self.obs_dim}, '
                             f'{self.act_dim}: resume with the same robot')
        critic, target, critic_opt = state['critic'], state['critic_target'], state['critic_opt']
        if any(k.startswith('q1.') for k in critic):  # saved before the critics were fused
            critic, target = TwinQ.from_separate(critic), TwinQ.from_separate(target)
            critic_opt = _fused_critic_opt_state(critic_opt, len(self._critic_params) // 2)
        self.actor.load_state_dict(state['actor'])
        self.critic.load_state_dict(critic)
        self.critic_target.load_state_dict(target_critic_state(target))
        with torch.no_grad():
            self.log_alpha.copy_(state['log_alpha'])
        self.actor_opt.load_state_dict(state['actor_opt'])
        self.critic_opt.load_state_dict(critic_opt)
        self.alpha_opt.load_state_dict(state['alpha_opt'])
        for opt in (self.actor_opt, self.critic_opt, self.alpha_opt):
            for group in opt.param_groups:  # a checkpoint's groups carry their own choice
                group.update(fused=True, foreach=None)
        self.updates = int(state['updates'])


def _fused_critic_opt_state(state: dict, n_layers: int) -> dict:
    """The critics' Adam state of a checkpoint from before the fused critics, for TwinQ's
    parameters: the moments of Q1's and Q2's layer k stacked as TwinQ stacks the weights."""
    old, new = state['state'], {}
    for k in range(n_layers * bool(old)):
        for index, first, bias in ((k, 2 * k, False), (n_layers + k, 2 * k + 1, True)):
            pair = (old[first], old[2 * n_layers + first])
            new[index] = {'step': pair[0]['step'], **{
                name: torch.stack([p[name][None] if bias else p[name].T for p in pair])
                for name in ('exp_avg', 'exp_avg_sq')}}
    return {'state': new,
            'param_groups': [dict(state['param_groups'][0], params=list(range(2 * n_layers)))]}
