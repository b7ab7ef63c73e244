"""Simulated controllers to try a realrl set-up against (ros2_control, UR RTDE)."""
