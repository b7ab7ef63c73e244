"""The launcher's own ROS node: drives lifecycles and watches the run's progress."""
from __future__ import annotations

from rclpy.node import Node
from realrl_interfaces.msg import (DriverStatus, EpisodeResult, LearnerStatus, PolicyVersion,
                                   TransitionAck)

from realrl_common.lifecycle import bring_up
from realrl_common.qos import DATA_QOS, LATCHED_QOS, STATUS_QOS
from realrl_bringup.progress import EpisodeLog, Progress


class MonitorNode(Node):
    def __init__(self, robot_ids: list[str], progress: Progress, episode_log: EpisodeLog):
        super().__init__('realrl_monitor')
        self.progress = progress
        self.episode_log = episode_log
        self.driver_states: dict[str, str] = {}
        for rid in robot_ids:
            self.create_subscription(EpisodeResult, f'/{rid}/episode', self._on_episode, DATA_QOS)
            self.create_subscription(DriverStatus, f'/{rid}/status', self._on_status, STATUS_QOS)
        self.create_subscription(TransitionAck, '/replay/ack', self._on_ack, DATA_QOS)
        self.create_subscription(LearnerStatus, '/learner/status', self._on_learner, STATUS_QOS)
        self.create_subscription(PolicyVersion, '/policy/version', self._on_version, LATCHED_QOS)

    def _on_episode(self, msg: EpisodeResult):
        self.progress.on_episode(msg.success)
        self.episode_log.append({
            'time_s': round(self.progress.elapsed(), 3),
            'robot_id': msg.robot_id, 'episode_id': msg.episode_id, 'steps': msg.steps,
            'return': round(float(msg.episode_return), 5), 'success': bool(msg.success),
            'truncated': bool(msg.truncated), 'policy_version': msg.policy_version,
            'interventions': msg.interventions})

    def _on_status(self, msg: DriverStatus):
        self.driver_states[msg.robot_id] = msg.lifecycle_state
        self.progress.steps[msg.robot_id] = msg.steps
        self.progress.rejected[msg.robot_id] = msg.actions_rejected

    def _on_ack(self, msg: TransitionAck):
        self.progress.stored = max(self.progress.stored, msg.stored)

    def _on_learner(self, msg: LearnerStatus):
        self.progress.learner_updates = msg.updates
        self.progress.learner_version = msg.policy_version

    def _on_version(self, msg: PolicyVersion):
        self.progress.policy_version = msg.version

    # -- lifecycle ----------------------------------------------------------------------
    def bring_up(self, fqn: str, spin, timeout: float = 30.0, alive=lambda: True) -> str:
        """configure (if unconfigured) then activate; returns '' or what went wrong
        (realrl_common.lifecycle: each step re-reads the state, lost requests are retried)."""
        return bring_up(self, fqn, spin, timeout, alive)
