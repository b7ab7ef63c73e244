"""A robot driven through ros2_control forward command controllers."""
