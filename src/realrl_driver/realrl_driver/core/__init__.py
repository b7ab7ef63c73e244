"""The robot-independent core of a driver: episode loop, action guard, driver node."""
