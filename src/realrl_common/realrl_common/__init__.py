"""Pieces shared by the realrl packages: configuration, conversions, QoS, embodiments, weights."""
