"""The teleop node's registration; its parameters are ``teleop_core.TeleopConfig`` (no ROS)."""
from __future__ import annotations

from realrl_common.plugins import NodeKind
from realrl_teleop.teleop_core import TeleopConfig

NODE = NodeKind(role='teleop', config=TeleopConfig)
