"""The launcher's own ROS node: drives lifecycles and watches the run's progress."""
from __future__ import annotations

import time

from lifecycle_msgs.msg import Transition as LifecycleTransition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.node import Node
from realrl_interfaces.msg import (DriverStatus, EpisodeResult, LearnerStatus, PolicyVersion,
                                   TransitionAck)

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
    def _call(self, client, request, timeout: float, spin, alive):
        deadline = time.monotonic() + timeout
        while not client.service_is_ready():
            if time.monotonic() > deadline or not alive():
                return None
            spin(0.05)
        future = client.call_async(request)
        while not future.done() and time.monotonic() < deadline and alive():
            spin(0.05)
        return future.result() if future.done() else None

    def lifecycle_state(self, fqn: str, spin, timeout: float = 2.0,
                        alive=lambda: True) -> str | None:
        client = self.create_client(GetState, f'{fqn}/get_state')
        try:
            res = self._call(client, GetState.Request(), timeout, spin, alive)
            return res.current_state.label if res is not None else None
        finally:
            self.destroy_client(client)

    def bring_up(self, fqn: str, spin, timeout: float = 30.0, alive=lambda: True) -> str:
        """configure (if unconfigured) then activate; returns '' or what went wrong.

        Each step re-reads the node's state first: a request can be lost while discovery
        still matches a dead predecessor of the node, so a step that got no answer is
        simply tried again. Gives up early when alive() turns false (the process died)."""
        deadline = time.monotonic() + timeout
        client = self.create_client(ChangeState, f'{fqn}/change_state')
        try:
            while time.monotonic() < deadline and alive():
                state = self.lifecycle_state(fqn, spin, 2.0, alive)
                if state == 'active':
                    return ''
                steps = {'unconfigured': ('configure', LifecycleTransition.TRANSITION_CONFIGURE),
                         'inactive': ('activate', LifecycleTransition.TRANSITION_ACTIVATE)}
                if state is None:
                    continue
                if state not in steps:
                    return f'{fqn} is {state!r}, cannot bring it up'
                name, tid = steps[state]
                req = ChangeState.Request()
                req.transition.id = tid
                res = self._call(client, req, 10.0, spin, alive)
                if res is not None and not res.success:
                    return f'{fqn}: {name} failed (see its log)'
        finally:
            self.destroy_client(client)
        why = 'its process exited' if not alive() else f'not active after {timeout:g}s'
        return f'{fqn} could not be brought up ({why})'
