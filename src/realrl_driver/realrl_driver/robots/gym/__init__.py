"""A gymnasium environment as a robot."""
