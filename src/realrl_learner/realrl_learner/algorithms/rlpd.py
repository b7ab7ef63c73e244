"""RLPD (Ball et al. 2023, "Efficient Online RL with Offline Data"): SAC with a critic
ensemble, subsampled target minimum, LayerNorm critics and a high update-to-data ratio;
the 'rlpd' algorithm plug-in. No ROS.

Symmetric sampling (half of every batch from demonstrations) is the trainer's: give the
learner ``demo_stores`` and leave ``demo_ratio`` at 0.5. The UTD ratio is
``updates_per_step`` (20 by default): the trainer makes that many updates per stored
transition. Each update steps the critics; the actor and temperature step every
``actor_update_interval`` updates (20: once per environment step, as the paper).

One update, top to bottom:
1. target: for the next state, sample a' from the actor; take the minimum over
   ``target_subset`` randomly chosen target critics of Q(s', a'), minus alpha log pi(a'|s');
   y = r + gamma (1 - terminated) that.
2. every critic of the ensemble regresses to y (sum of their squared errors).
3. actor: maximise the ensemble's mean Q(s, a~pi) plus alpha times the entropy.
4. temperature: toward the target entropy, as SAC.
5. Polyak update of the target critics.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

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
from realrl_learner.critics import CriticStack
from realrl_learner.sac import BATCH_KEYS, MASK_KEY, SACConfig, critic_dtype


@dataclass(frozen=True)
class RLPDConfig(SACConfig):
    """RLPD hyperparameters: SAC's, with the paper's defaults, and the ensemble's."""

    type: str = 'rlpd'
    """The algorithm (``algorithm.type`` in the learner's config)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target critics per update."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic ensemble."""
    alpha_lr: float = 3e-4
    """Adam learning rate of log(temperature)."""
    batch_size: int = 256
    """Transitions per gradient step (half of them demonstrations, with demo_stores)."""
    critic_hidden_sizes: tuple[int, ...] = (256, 256)
    """Widths of the hidden layers of each critic."""
    init_temperature: float = 1.0
    """Initial entropy temperature alpha."""
    learning_starts: int = 256
    """Stored transitions before the first update (demonstrations are there from the start)."""
    updates_per_step: float = 20.0
    """Updates per stored transition: RLPD's high UTD ratio."""
    actor_update_interval: int = 20
    """Step the actor and temperature every this many critic updates."""
    num_critics: int = 10
    """Critics in the ensemble."""
    target_subset: int = 2
    """Target critics drawn at random per update; the target is their minimum."""
    critic_layer_norm: bool = True
    """LayerNorm after each hidden layer of the critics (keeps Q bounded off the data)."""

    def __post_init__(self):
        super().__post_init__()
        if self.num_critics < 1:
            raise ValueError(f'num_critics must be >= 1, got {self.num_critics}')
        if not 1 <= self.target_subset <= self.num_critics:
            raise ValueError(f'target_subset must be in 1..num_critics ({self.num_critics}), '
                             f'got {self.target_subset}')


class RLPD:
    """Networks, optimisers and the update rule of RLPD. `seed` seeds torch's global RNG
    (initialisation, sampling noise, the target subsets)."""

    config_class = RLPDConfig
    batch_keys = BATCH_KEYS

    def __init__(self, obs: ObservationSpec | int, act_dim: int,
                 cfg: RLPDConfig = RLPDConfig(), seed: int = 0):
        self.cfg = cfg
        self.obs_spec = obs if isinstance(obs, ObservationSpec) else ObservationSpec(int(obs))
        self.act_dim = act_dim
        torch.manual_seed(seed)
        self.actor = make_actor(cfg.actor, self.obs_spec, act_dim)
        self.critic = with_encoder(self.actor, CriticStack(
            cfg.num_critics, critic_input_dim(self.actor), act_dim, cfg.critic_hidden_sizes,
            cfg.actor.activation, critic_dtype(cfg.critic_matmul_dtype), cfg.critic_layer_norm))
        # the heads the features feed (the actor's and critics' own for a state actor)
        self.actor_head, self.critic_head = actor_head(self.actor), critic_head(self.critic)
        if hasattr(self.actor_head, 'hidden_dtype'):  # GaussianActor (also the cnn's head)
            self.actor_head.hidden_dtype = critic_dtype(cfg.actor_matmul_dtype)
        self.critic_target = copy.deepcopy(self.critic_head).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(cfg.init_temperature), requires_grad=True)
        # fused: one kernel steps all of an optimiser's tensors (Adam's rule, unchanged)
        self.actor_opt = torch.optim.Adam(actor_parameters(self.actor), lr=cfg.actor_lr,
                                          fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr,
                                           fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr, fused=True)
        self._critic_params = list(self.critic_head.parameters())
        self._target_params = list(self.critic_target.parameters())
        self.updates = 0
        self._actor_metrics: dict[str, float] = {}

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())

    def update(self, batch: dict) -> dict[str, float]:
        """One critic step (and every actor_update_interval-th call an actor and temperature
        step) on `batch` (keys BATCH_KEYS, optionally MASK_KEY)."""
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise ValueError(f'batch lacks {missing}; it needs keys {list(BATCH_KEYS)}')
        obs = batch_obs(batch['obs'], self.obs_spec, 'obs')
        next_obs = batch_obs(batch['next_obs'], self.obs_spec, 'next_obs')
        action = torch.as_tensor(batch['action'], dtype=torch.float32)
        reward = torch.as_tensor(batch['reward'], dtype=torch.float32).reshape(-1, 1)
        terminated = torch.as_tensor(batch['terminated'], dtype=torch.float32).reshape(-1, 1)
        mask = batch.get(MASK_KEY)
        mask = None if mask is None else torch.as_tensor(mask, dtype=torch.float32)
        if action.ndim != 2 or action.shape[1] != self.act_dim:
            raise ValueError(f'batch["action"] must be [B, {self.act_dim}], got '
                             f'{tuple(action.shape)}')
        alpha = self.log_alpha.exp().detach()

        # the image encoder runs once on obs (with gradients) and once on next_obs (without)
        x, x_next = encode_pair(self.actor, obs, next_obs)

        # 1-2. every critic regresses to the subsampled-minimum soft target
        with torch.no_grad():
            target_q = self.td_target(reward, x_next, terminated, mask, alpha)
        q = self.critic_head(x, action)                                 # [n, B, 1]
        critic_loss = ((q - target_q) ** 2).mean(dim=(1, 2)).sum()
        optimizer_step(self.critic_opt, critic_loss, self.critic.parameters(),
                       self.cfg.max_grad_norm)

        # 3-4. actor and temperature, at a lower rate
        if self.updates % self.cfg.actor_update_interval == 0:
            self._actor_metrics = self._update_actor_and_alpha(x.detach(), mask, alpha)

        # 5. target critics follow slowly
        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._critic_params, self.cfg.tau)
        self.updates += 1
        return {'train/critic_loss': float(critic_loss.detach()),
                'train/q_mean': float(q.detach().mean()),
                'train/target_q_mean': float(target_q.mean()),
                **self._actor_metrics, 'train/updates': float(self.updates)}

    def td_target(self, reward: torch.Tensor, next_obs, terminated: torch.Tensor,
                  mask: torch.Tensor | None, alpha: torch.Tensor) -> torch.Tensor:
        """The target r + gamma (1 - terminated) (min over a random subset of target critics of
        Q(s', a') - alpha log pi(a'|s')), a' ~ pi(s'): [B, 1]. next_obs are the next states'
        features (``encode_pair``; the states themselves for a state actor)."""
        next_action, next_logp, _ = self.actor_head(next_obs, mask)
        subset = torch.randperm(self.cfg.num_critics)[:self.cfg.target_subset]
        next_q = self.critic_target(next_obs, next_action)[subset].min(dim=0).values
        return reward + self.cfg.gamma * (1.0 - terminated) * (next_q - alpha * next_logp)

    def _update_actor_and_alpha(self, x: torch.Tensor, mask: torch.Tensor | None,
                                alpha: torch.Tensor) -> dict[str, float]:
        """x: the observations' features, detached (the actor loss never moves the encoder)."""
        self.critic_head.requires_grad_(False)  # the actor loss must not train the critics
        new_action, logp, _ = self.actor_head(x, mask)
        q = self.critic_head(x, new_action)
        actor_loss = (alpha * logp - q.mean(dim=0)).mean()
        optimizer_step(self.actor_opt, actor_loss, self.actor.parameters(),
                       self.cfg.max_grad_norm)
        self.critic_head.requires_grad_(True)

        entropy = -logp.detach().mean()
        target = -float(self.act_dim if mask is None else mask.sum(dim=1).mean())
        if self.cfg.target_entropy is not None:
            target = float(self.cfg.target_entropy)
        alpha_loss = self.log_alpha.exp() * (entropy - target)
        optimizer_step(self.alpha_opt, alpha_loss)
        return {'train/actor_loss': float(actor_loss.detach()), 'train/alpha': self.alpha,
                'train/alpha_loss': float(alpha_loss.detach()), 'train/entropy': float(entropy)}

    # ------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        """Networks, optimisers, temperature and the update count."""
        return {'obs_dim': self.obs_spec.state_dim, 'act_dim': self.act_dim,
                'updates': self.updates, 'actor': self.actor.state_dict(),
                'critic': self.critic.state_dict(),
                'critic_target': self.critic_target.state_dict(),
                'log_alpha': self.log_alpha.detach().clone(),
                'actor_opt': self.actor_opt.state_dict(),
                'critic_opt': self.critic_opt.state_dict(),
                'alpha_opt': self.alpha_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict` output."""
        dims = (state.get('obs_dim'), state.get('act_dim'))
        if dims != (self.obs_spec.state_dim, self.act_dim):
            raise ValueError(f'checkpoint is for obs_dim {dims[0]}, act_dim {dims[1]}; this '
                             f'RLPD has {self.obs_spec.state_dim}, {self.act_dim}: resume with '
                             'the same robot')
        critic, target, critic_opt = state['critic'], state['critic_target'], state['critic_opt']
        if any('net.' in k for k in critic):  # saved before the critics were a CriticStack
            names = CriticStack.sequential_names(critic)
            critic_opt = _renamed_opt_state(critic_opt, list(critic),
                                            list(self.critic.state_dict()), names)
            critic = {names[k]: v for k, v in critic.items()}
            target = target_critic_state(target)
            target = {CriticStack.sequential_names(target)[k]: v for k, v in target.items()}
        self.actor.load_state_dict(state['actor'])
        self.critic.load_state_dict(critic)
        self.critic_target.load_state_dict(target_critic_state(target))
        with torch.no_grad():
            self.log_alpha.copy_(state['log_alpha'])
        for name, opt_state in (('actor_opt', state['actor_opt']), ('critic_opt', critic_opt),
                                ('alpha_opt', state['alpha_opt'])):
            getattr(self, name).load_state_dict(opt_state)
            for group in getattr(self, name).param_groups:  # a checkpoint's own choice
                group.update(fused=True, foreach=None)
        self.updates = int(state['updates'])


def _renamed_opt_state(state: dict, old_names: list[str], new_names: list[str],
                       rename: dict[str, str]) -> dict:
    """An optimiser state over parameters old_names (in that order) for the same tensors
    renamed (rename: old -> new) and ordered as new_names."""
    old_index = {rename[name]: i for i, name in enumerate(old_names)}
    order = [old_index[name] for name in new_names]
    moments = {i: state['state'][j] for i, j in enumerate(order) if j in state['state']}
    return {'state': moments,
            'param_groups': [dict(state['param_groups'][0], params=list(range(len(order))))]}
