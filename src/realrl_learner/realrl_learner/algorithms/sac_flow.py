"""SAC with a flow policy ('sac_flow'); no ROS imports.

The update is Soft Actor-Critic's (``realrl_learner.sac.SAC``: twin critics, clipped double
Q, learned temperature); what changes is the actor, a flow-matching policy
(``realrl_policy.actors.flow.FlowActor`` with ``step_noise``). Read from top to bottom, one
actor call is:

1. ``x0 ~ N(0, I)``, the flow's start;
2. ``flow_steps`` Euler steps ``x <- x + dt * v(s, x, t) + sigma(s, x, t) * eps``: the learned
   velocity field moves the sample toward an action, and a learned noise keeps each step a
   Gaussian transition;
3. ``a = tanh(x)``.

The log-probability SAC's entropy term needs is that of the whole path: the Gaussian
log-densities of x0 and of every step, minus tanh's log-Jacobian. The actor's loss
``alpha * log pi(a|s) - min Q(s, a)`` back-propagates through ``a``, the unrolled Euler steps,
into the velocity and noise networks (the reparameterisation trick applied step by step), so
the critic trains the flow directly, with no likelihood of the data to compute.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from realrl_learner.algorithms.common import ObservationSpec, as_spec
from realrl_learner.sac import BATCH_KEYS, SAC, SACConfig
from realrl_policy.actors.flow import FlowActorConfig


@dataclass(frozen=True)
class SACFlowConfig(SACConfig):
    """SAC's hyperparameters, with a flow actor (chunk 1, step noise on)."""

    type: str = 'sac_flow'
    """Registered algorithm name ('realrl.algorithms')."""
    actor: FlowActorConfig = field(default_factory=lambda: FlowActorConfig(step_noise=True))
    """The flow actor; step_noise must be on (it gives the path its log-probability)."""

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.actor, FlowActorConfig) or self.actor.type != 'flow':
            raise ValueError(f"sac_flow trains a 'flow' actor (FlowActorConfig), got "
                             f'{type(self.actor).__name__} of type {self.actor.type!r}')
        if not self.actor.step_noise:
            raise ValueError('sac_flow needs actor.step_noise: true (the path\'s '
                             'log-probability comes from the noise of its steps)')
        if self.actor.chunk != 1:
            raise ValueError(f'sac_flow learns single actions: set actor.chunk to 1, got '
                             f'{self.actor.chunk}')


class SACFlow(SAC):
    """SAC whose actor is a flow policy; networks, update and checkpoints are SAC's."""

    config_class = SACFlowConfig
    batch_keys = BATCH_KEYS

    def __init__(self, obs_spec: ObservationSpec | int, act_dim: int,
                 cfg: SACFlowConfig = SACFlowConfig(), seed: int = 0):
        if not isinstance(cfg, SACFlowConfig):
            raise ValueError(f'sac_flow needs a SACFlowConfig, got {type(cfg).__name__}')
        super().__init__(as_spec(obs_spec).state_dim, act_dim, cfg, seed)
