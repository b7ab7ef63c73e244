"""Learning algorithms as plug-ins (the 'realrl.algorithms' entry points); no ROS imports.

An algorithm is a class with a frozen config dataclass (``config_class``, validated without
ROS), built as ``cls(obs_spec, act_dim, cfg, seed)`` (``obs_spec``: the state size, or an
``ObservationSpec`` with cameras and an instruction), with

- ``batch_keys``: the batch keys its ``update`` reads (``common.BATCH_FIELDS`` says what
  each holds);
- ``update(batch: dict[str, torch.Tensor]) -> dict[str, float]``: one gradient step,
  metrics namespaced 'train/...';
- ``actor``: the ``nn.Module`` the policy serves (packed by ``weights_blob.pack_actor``);
- ``state_dict()`` / ``load_state_dict(state)``: everything to resume training.

Here: 'bc' (behaviour cloning), 'hg_dagger' (learning from a person's interventions) and
'sac_flow' (SAC whose actor is a flow-matching policy).
"""
