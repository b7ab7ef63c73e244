"""A simulated MuJoCo arm as a robot (reach task)."""
