"""Reward nodes of realrl: label observations with reward and success."""
