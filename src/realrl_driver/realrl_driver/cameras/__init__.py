"""Cameras for drivers and the camera node: OpenCV and RealSense sources, rigs."""
