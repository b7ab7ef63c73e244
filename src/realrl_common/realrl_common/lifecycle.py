"""Bringing a lifecycle node to active: configure if unconfigured, then activate.

``BringUp`` never blocks, so one process can bring many nodes up at once from a timer (the
hardware manager) or drive a single one from a loop that spins (``bring_up``, the launcher).
Each step re-reads the node's state first. A request can be lost while discovery still
matches a dead predecessor of the node (same name, killed), so a step that got no answer in
time is simply tried again after the state is read anew; and a transition that someone else
made in the meantime (another manager) is not an error.
"""
from __future__ import annotations

import time

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

STEPS = {'unconfigured': ('configure', Transition.TRANSITION_CONFIGURE),
         'inactive': ('activate', Transition.TRANSITION_ACTIVATE)}
TRANSITIONAL = {'configuring', 'cleaningup', 'activating', 'deactivating', 'shuttingdown',
                'errorprocessing'}


class BringUp:
    """Drives the lifecycle node ``fqn`` to active (or, with ``target='inactive'``, only
    configures it); call ``poll()`` until it returns a str.

    ``poll()`` returns None while working, '' once the node is active, or what went wrong.
    It takes every step it can at once; ``on_progress`` (optional) is called when an answer
    arrives, so a caller can poll again right then instead of on its next timer tick.
    """

    def __init__(self, node, fqn: str, state_timeout_s: float = 2.0,
                 change_timeout_s: float = 10.0, clock=time.monotonic, on_progress=None,
                 target: str = 'active'):
        if target not in ('active', 'inactive'):
            raise ValueError(f"target must be 'active' or 'inactive', got {target!r}")
        self.fqn = fqn
        self.target = target
        self.state = None  # last label read from the node
        self._node, self._clock, self._on_progress = node, clock, on_progress
        self._state_timeout, self._change_timeout = state_timeout_s, change_timeout_s
        self._get = node.create_client(GetState, f'{fqn}/get_state')
        self._change = node.create_client(ChangeState, f'{fqn}/change_state')
        self._pending = None  # (client, future, deadline)
        self._step = None     # (name, state it starts from) of the change last requested
        self._refused = None  # the same, when the node refused that change
        self.result: str | None = None

    def poll(self) -> str | None:
        while self.result is None and self._advance():
            pass
        return self.result

    @property
    def transition_deadline(self) -> float:
        """While a configure or activate is awaited, when its answer is due; else 0."""
        if self._pending is not None and self._pending[0] is self._change:
            return self._pending[2]
        return 0.0

    def _advance(self) -> bool:
        """Take one step; True if another one can be taken right away."""
        now = self._clock()
        if self._pending is not None:
            client, future, deadline = self._pending
            if not future.done():
                if now <= deadline:
                    return False
                client.remove_pending_request(future)  # lost, or the node is busy
                self._pending = None
                return True  # read the state again
            self._pending = None
            if client is self._get:
                return self._on_state(future.result().current_state.label)
            if not future.result().success:
                # A refusal fails only if the node is still where the step started (read
                # next): the transition may have been refused because someone else made it.
                self._refused = self._step
            return True
        if not self._get.service_is_ready():
            return False
        self._send(self._get, GetState.Request(), now + self._state_timeout)
        return True

    def _on_state(self, label: str) -> bool:
        self.state = label
        if label == self.target or label == 'active':
            self._finish('' if label == self.target else
                         f'{self.fqn} is already active (wanted {self.target})')
            return False
        if label in TRANSITIONAL:
            return False  # someone else's transition; read again on the next poll
        if label not in STEPS:
            self._finish(f'{self.fqn} is {label!r}, cannot bring it up')
            return False
        if self._refused is not None and self._refused[1] == label:
            self._finish(f'{self.fqn}: {self._refused[0]} failed (see its log)')
            return False
        if not self._change.service_is_ready():
            return False
        name, transition_id = STEPS[label]
        req = ChangeState.Request()
        req.transition.id = transition_id
        self._step, self._refused = (name, label), None
        self._send(self._change, req, self._clock() + self._change_timeout)
        return True

    def _send(self, client, request, deadline: float) -> None:
        future = client.call_async(request)
        if self._on_progress is not None:
            future.add_done_callback(lambda _: self._on_progress())
        self._pending = (client, future, deadline)

    def _finish(self, result: str) -> None:
        self.result = result
        self.close()

    def close(self) -> None:
        """Destroy the clients; the object answers its last result from then on."""
        if self._get is not None:
            if self._pending is not None:
                self._pending[0].remove_pending_request(self._pending[1])
                self._pending = None
            self._node.destroy_client(self._get)
            self._node.destroy_client(self._change)
            self._get = self._change = None
        if self.result is None:
            self.result = f'{self.fqn}: bring-up abandoned'


def bring_up(node, fqn: str, spin, timeout: float = 30.0, alive=lambda: True,
             state_timeout_s: float = 2.0, change_timeout_s: float = 10.0,
             target: str = 'active') -> str:
    """Blocking form of ``BringUp``: '' once ``fqn`` is ``target`` (active, or inactive:
    configured only), else what went wrong.

    ``spin(t)`` spins the node's executor for up to t seconds. Gives up early when alive()
    turns false (the process died)."""
    deadline = time.monotonic() + timeout
    job = BringUp(node, fqn, state_timeout_s, change_timeout_s, target=target)
    try:
        while time.monotonic() < deadline and alive():
            result = job.poll()
            if result is not None:
                return result
            spin(0.05)
    finally:
        if job.result is None:
            job.close()
    why = 'its process exited' if not alive() else f'not active after {timeout:g}s'
    return f'{fqn} could not be brought up ({why})'
