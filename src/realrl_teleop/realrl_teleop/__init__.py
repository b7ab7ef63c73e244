"""Teleop of realrl: keyboard, gamepad and SpaceMouse interventions."""
