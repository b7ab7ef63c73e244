"""Actor types that produce action chunks: a flow-matching head ('flow') and a small
vision-language-action model ('vla_tiny'); no ROS imports.

A chunk actor has ``chunk`` (H, the actions per inference), ``obs_dim``, ``act_dim``,
``cfg`` (its config class is the type's ``config_class``, a subclass of ``ActorConfig``),
and these methods:

- ``act(obs, deterministic=False) -> np.ndarray`` of shape (H, act_dim), values in [-1, 1]:
  the next H actions for one observation (a state vector, or for 'vla_tiny' a mapping of
  'state', 'image' and 'instruction');
- ``sample(inputs, deterministic=False) -> Tensor [B, H, act_dim]`` for a batch of inputs
  (``'obs'`` [B, obs_dim], and for 'vla_tiny' ``'image'`` and ``'instruction'`` tokens);
- ``imitation_loss(inputs, chunk [B, H, act_dim], weight=None) -> Tensor``: the loss that
  behaviour cloning minimises.
"""
