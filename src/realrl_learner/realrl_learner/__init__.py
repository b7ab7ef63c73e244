"""The learner of realrl: SAC on the replay store, versioned weights out, checkpoints."""
