"""BringUp (realrl_common.lifecycle) against a scripted lifecycle node: re-read before each
step, lost requests sent again, a transition someone else made is not an error."""
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from realrl_common.lifecycle import BringUp

TRANSITIONS = {('unconfigured', Transition.TRANSITION_CONFIGURE): 'inactive',
               ('inactive', Transition.TRANSITION_ACTIVATE): 'active'}


class Future:
    def __init__(self):
        self._result, self._callbacks = None, []

    def done(self):
        return self._result is not None

    def result(self):
        return self._result

    def add_done_callback(self, cb):
        self._callbacks.append(cb)

    def set_result(self, result):
        self._result = result
        for cb in self._callbacks:
            cb(self)


class Remote:
    """The lifecycle node at the other end; answers when told to."""

    def __init__(self, state='unconfigured'):
        self.state = state
        self.queue, self.log, self.removed = [], [], []
        self.refuse = set()  # transition ids that fail
        self.destroyed = 0

    def answer(self, drop=False):
        """Answer (or lose) every request sent so far."""
        queue, self.queue = self.queue, []
        for kind, req, future in queue:
            if drop:
                continue
            if kind == 'get_state':
                res = GetState.Response()
                res.current_state.label = self.state
            else:
                tid = req.transition.id
                res = ChangeState.Response(success=False)
                if (self.state, tid) in TRANSITIONS and tid not in self.refuse:
                    self.state, res.success = TRANSITIONS[(self.state, tid)], True
            future.set_result(res)


class Client:
    def __init__(self, remote, kind):
        self.remote, self.kind = remote, kind

    def service_is_ready(self):
        return True

    def call_async(self, req):
        future = Future()
        self.remote.queue.append((self.kind, req, future))
        self.remote.log.append(self.kind if self.kind == 'get_state'
                               else f'change:{req.transition.id}')
        return future

    def remove_pending_request(self, future):
        self.remote.removed.append(future)


class Node:
    def __init__(self, remote):
        self.remote = remote

    def create_client(self, srv_type, name):
        assert name.startswith('/arm0/driver/')
        return Client(self.remote, name.rsplit('/', 1)[1])

    def destroy_client(self, client):
        self.remote.destroyed += 1


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def run(remote, job, rounds=10):
    for _ in range(rounds):
        result = job.poll()
        if result is not None:
            return result
        remote.answer()
    return job.poll()


def test_configure_then_activate_reading_the_state_before_each_step():
    remote, progress = Remote(), []
    job = BringUp(Node(remote), '/arm0/driver', clock=Clock(),
                  on_progress=lambda: progress.append(1))
    assert run(remote, job) == ''
    assert remote.log == ['get_state', f'change:{Transition.TRANSITION_CONFIGURE}', 'get_state',
                          f'change:{Transition.TRANSITION_ACTIVATE}', 'get_state']
    assert len(progress) == 5 and remote.destroyed == 2 and job.state == 'active'


def test_a_lost_request_is_sent_again_after_its_timeout():
    remote, clock = Remote(), Clock()
    job = BringUp(Node(remote), '/arm0/driver', state_timeout_s=1.0, clock=clock)
    assert job.poll() is None
    remote.answer(drop=True)  # the first get_state went to a dead predecessor
    clock.t = 0.9
    assert job.poll() is None and remote.log == ['get_state']
    clock.t = 1.1
    assert job.poll() is None and remote.log == ['get_state', 'get_state']
    assert len(remote.removed) == 1
    assert run(remote, job) == ''


def test_the_deadline_of_an_awaited_transition_is_known():
    remote, clock = Remote(), Clock()
    job = BringUp(Node(remote), '/arm0/driver', change_timeout_s=4.0, clock=clock)
    job.poll()
    assert job.transition_deadline == 0.0  # reading the state
    remote.answer()
    clock.t = 1.0
    job.poll()  # asks to configure
    assert job.transition_deadline == 5.0
    remote.answer()
    job.poll()
    assert job.transition_deadline == 0.0


def test_a_refused_configure_fails_with_the_step_named():
    remote = Remote()
    remote.refuse.add(Transition.TRANSITION_CONFIGURE)
    job = BringUp(Node(remote), '/arm0/driver', clock=Clock())
    assert run(remote, job) == '/arm0/driver: configure failed (see its log)'


def test_a_transition_someone_else_made_first_is_not_an_error():
    remote = Remote()
    job = BringUp(Node(remote), '/arm0/driver', clock=Clock())
    job.poll()
    remote.answer()  # reads 'unconfigured', asks to configure ...
    remote.state = 'inactive'  # ... but another manager configured it first: refused
    assert run(remote, job) == ''
    assert remote.state == 'active'


def test_a_node_that_cannot_be_brought_up_says_why():
    remote = Remote(state='finalized')
    job = BringUp(Node(remote), '/arm0/driver', clock=Clock())
    assert run(remote, job) == "/arm0/driver is 'finalized', cannot bring it up"
    remote = Remote(state='configuring')  # in someone's transition: wait and read again
    job = BringUp(Node(remote), '/arm0/driver', clock=Clock())
    assert run(remote, job, rounds=4) is None
    assert len(remote.log) >= 2 and set(remote.log) == {'get_state'}


def test_target_inactive_configures_only():
    remote = Remote()
    job = BringUp(Node(remote), '/arm0/driver', clock=Clock(), target='inactive')
    assert run(remote, job) == ''
    assert remote.log == ['get_state', f'change:{Transition.TRANSITION_CONFIGURE}', 'get_state']
    assert remote.state == 'inactive'
    already = Remote('active')
    job = BringUp(Node(already), '/arm0/driver', clock=Clock(), target='inactive')
    assert 'already active' in run(already, job)  # never deactivated behind someone's back
