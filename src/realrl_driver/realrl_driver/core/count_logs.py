"""The driver's counts in its log: rejected and lost actions, and a robot's own warnings
(no rclpy import; the node passes its logger).

Counting happens where things happen: the action guard and the loss counter (safety.py), a
robot's ``counters`` (e.g. the UR arm's steps not sent). Logging happens here, called from
the node's status timer, through rclpy's logger throttle (``throttle_duration_sec``). Not from
the action callback or the control tick: one throttled rclpy log call costs about a
millisecond (it inspects the caller's frame and source file), which at 1 kHz of actions
would itself overflow the action queue it reports on.
"""
from __future__ import annotations


class CountLogger:
    """Logs a count when it has changed, each kind at most every ``period_s``."""

    def __init__(self, logger, period_s: float = 10.0):
        self.logger, self.period_s = logger, period_s
        self._actions: tuple = ({}, 0)
        self._warned: dict[str, int] = {}
        self._children: dict = {}

    def actions(self, rejected: dict, lost: int) -> None:
        """Rejections by reason and actions lost before the node took them."""
        now = (dict(rejected), int(lost))
        if now == self._actions:
            return
        self._actions = now
        self.logger.warning(f'actions rejected so far, by reason: {now[0]}; lost before the '
                            f'driver took them: {now[1]} (the status topic has the counts)',
                            throttle_duration_sec=self.period_s)

    def waiting(self, waiting_for: str, robot_id: str) -> None:
        """The loop made no step since the last status because no reward label came."""
        if waiting_for == 'reward_label':
            self.logger.warning(
                f'waiting for reward labels on /{robot_id}/reward_label: the robot holds until '
                f'a reward node labels its observations (is one running, with {robot_id!r} in '
                f'its robot_ids, and can its reward read this robot\'s state?)',
                throttle_duration_sec=self.period_s)

    def robot_warnings(self, robot) -> None:
        """A robot's ``warnings`` (reason -> newest message) whose ``counters`` grew; each
        reason through a logger of its own, so one reason does not silence another."""
        warnings = getattr(robot, 'warnings', None)
        if not warnings:
            return
        for reason, message in list(warnings.items()):
            n = robot.counters[reason]
            if self._warned.get(reason) == n:
                continue
            self._warned[reason] = n
            if reason not in self._children:
                self._children[reason] = self.logger.get_child(reason)
            self._children[reason].warning(f'{message} ({n} times)',
                                           throttle_duration_sec=self.period_s)
