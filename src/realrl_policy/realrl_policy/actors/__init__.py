"""Actor types that produce action chunks: a flow-matching head ('flow') and a small
vision-language-action model ('vla_tiny'); no ROS imports.

A chunk actor has ``chunk_horizon`` (H, the actions per inference), ``obs_dim``,
``act_dim``, ``cfg`` (its config class is the type's ``config_class``, a subclass of
``ActorConfig``), and these methods:

- ``act_chunk(obs, deterministic=False, instruction='', images=None) -> np.ndarray`` of
  shape (H, act_dim), values in [-1, 1]: the next H actions for one state vector (with the
  episode's instruction and the camera frames where ``takes_language`` / ``takes_images``);
- ``act(obs, deterministic=False)``: the first of them (the single-action interface);
- ``sample(inputs, deterministic=False) -> Tensor [B, H, act_dim]`` for a batch of inputs
  (``'obs'`` [B, obs_dim], and for 'vla_tiny' ``'image'`` and ``'instruction'``);
- ``imitation_loss(inputs, chunk [B, H, act_dim], weight=None) -> Tensor``: the loss that
  behaviour cloning minimises.
"""
