"""What a ROS user sees of a driver: joint states, TF, markers and camera images."""
