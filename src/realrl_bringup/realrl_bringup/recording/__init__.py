"""Recording ROS topics to MCAP files that rosbag2 tools and Foxglove open."""
