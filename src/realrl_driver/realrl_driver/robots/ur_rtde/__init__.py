"""A Universal Robots arm driven through RTDE, or its simulated controller."""
