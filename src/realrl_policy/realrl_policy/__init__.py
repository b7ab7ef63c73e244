"""The policy of realrl: observation to action at the control rate, weights swapped
between steps."""
