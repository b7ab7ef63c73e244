"""The replay node: durable before acknowledged, gap-free per robot, survives SIGKILL."""
import signal

import numpy as np
from ros_env import Proc, executable, wait_for

from realrl_common.convert import to_f32
from realrl_common.qos import DATA_QOS, LATCHED_QOS
from realrl_interfaces.msg import RobotDescription, Transition, TransitionAck
from realrl_interfaces.srv import SenderState
from realrl_replay.reader import ReplayReader


def start(tmp_path, store, name):
    return Proc([executable('realrl_replay', 'replay_node'), '--ros-args',
                 '-p', f'store_path:={store}', '-p', 'robot_ids:=[arm0]'], tmp_path / name)


def transition(seq, episode=0):
    return Transition(robot_id='arm0', seq=seq, episode_id=episode, step=seq,
                      state=to_f32(np.full(4, seq)), action=to_f32([0.1, 0.2]), reward=-1.0,
                      next_state=to_f32(np.full(4, seq + 1)), policy_version=seq // 2)


def sender_state(node):
    """Ask, and ask again: a request sent before discovery matched a restarted server is
    lost (services have no retry), as the driver's own resume query knows."""
    client = node.create_client(SenderState, '/replay/sender_state')
    for _ in range(8):
        if wait_for(client.service_is_ready, 15, spin=node.spin):
            future = client.call_async(SenderState.Request(robot_id='arm0'))
            if wait_for(future.done, 4, spin=node.spin):
                return future.result()
    raise AssertionError('/replay/sender_state never answered')


def test_gap_free_ack_after_commit_and_recovery_after_sigkill(ros_node, tmp_path):
    node, store = ros_node, tmp_path / 'store'
    acks = []
    node.create_subscription(TransitionAck, '/replay/ack', acks.append, DATA_QOS)
    desc = node.create_publisher(RobotDescription, '/arm0/description', LATCHED_QOS)
    pub = node.create_publisher(Transition, '/arm0/transition', DATA_QOS)
    desc.publish(RobotDescription(robot_id='arm0', state_dim=4, action_dim=2,
                                  action_low=to_f32([-1, -1]), action_high=to_f32([1, 1])))
    replay = start(tmp_path, store, 'replay1.log')
    try:
        assert sender_state(node).known is False
        for seq in (1, 3, 2, 2):  # 3 before 2 is a gap: it must wait for its re-send
            pub.publish(transition(seq))
            node.spin(0.1)
        assert wait_for(lambda: acks and acks[-1].committed_seq == 2, 10, spin=node.spin)
        pub.publish(transition(3))
        assert wait_for(lambda: acks[-1].committed_seq == 3, 10, spin=node.spin)
        reader = ReplayReader(store)
        assert reader.read_range(0, reader.count, ['seq'])['seq'].tolist() == [1, 2, 3]
        replay.kill(signal.SIGKILL)
        replay.stop()
    finally:
        replay.stop()

    replay = start(tmp_path, store, 'replay2.log')  # reopens and recovers the store
    try:
        state = sender_state(node)
        assert (state.known, state.committed_seq, state.stored) == (True, 3, 3)
        bad = transition(4, episode=1)
        bad.reward = float('nan')
        pub.publish(bad)  # rejected, logged (throttled), never stored; seq 4 still expected
        assert wait_for(lambda: 'arm0#4: reward is not finite' in replay.output(), 10,
                        spin=node.spin)
        pub.publish(transition(4, episode=1))
        assert wait_for(lambda: acks[-1].committed_seq == 4, 10, spin=node.spin)
        assert sender_state(node).last_episode_id == 1
    finally:
        replay.stop()
    rows = ReplayReader(store).read_range(0, 4, ['seq', 'obs/state', 'policy_version'])
    assert rows['seq'].tolist() == [1, 2, 3, 4]
    assert rows['obs/state'][:, 0].tolist() == [1, 2, 3, 4]
    assert rows['policy_version'].tolist() == [0, 1, 1, 2]


def test_a_foreign_folder_is_refused_and_left_untouched(ros_node, tmp_path):
    foreign = tmp_path / 'photos'
    foreign.mkdir()
    (foreign / 'cat.jpg').write_bytes(b'\xff\xd8 not a store')
    before = sorted(p.name for p in foreign.iterdir())
    replay = start(tmp_path, foreign, 'replay.log')
    code = replay.p.wait(30)
    assert code == 2
    assert 'store_path' in replay.output()
    assert sorted(p.name for p in foreign.iterdir()) == before
    replay.stop()
