"""Over real DDS: a policy three control periods slow drives the MuJoCo arm through action
chunks, and the episode's language instruction goes driver -> observation -> store."""
import numpy as np
from ros_env import Proc, executable, wait_for

from realrl_common.convert import to_f32
from realrl_common.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, STATUS_QOS
from realrl_common.transition import decode_text
from realrl_interfaces.msg import ActionChunk, DriverStatus, Observation, RobotDescription
from realrl_replay.reader import ReplayReader

INSTRUCTIONS = ['pick the red cube', 'push the blue cube']


def test_chunks_drive_the_arm_and_the_instruction_reaches_the_store(ros_node, tmp_path):
    node, store = ros_node, tmp_path / 'store'
    observations, chunks, statuses, desc = [], [], [], []
    node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
    node.create_subscription(ActionChunk, '/arm0/action_chunk', chunks.append, COMMAND_QOS)
    node.create_subscription(DriverStatus, '/arm0/status', statuses.append, STATUS_QOS)
    node.create_subscription(RobotDescription, '/arm0/description', desc.append, LATCHED_QOS)
    bad_pub = node.create_publisher(ActionChunk, '/arm0/action_chunk', COMMAND_QOS)
    procs = [
        Proc([executable('realrl_replay', 'replay_node'), '--ros-args',
              '-p', f'store_path:={store}', '-p', 'robot_ids:=[arm0]'], tmp_path / 'replay.log'),
        Proc([executable('realrl_reward', 'reward_node')], tmp_path / 'reward.log'),
        Proc([executable('realrl_policy', 'policy_node'), '--ros-args', '-p', 'chunks:=overlap',
              '-p', 'min_inference_s:=0.15'], tmp_path / 'policy.log'),
        Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args', '-r',
              '__ns:=/arm0', '-p', 'control_hz:=20.0', '-p', 'episode_max_steps:=12',
              '-p', f'instructions:={INSTRUCTIONS}'], tmp_path / 'driver.log')]
    try:
        from realrl_common.lifecycle import bring_up
        assert bring_up(node, '/arm0/driver', node.spin, timeout=60.0,
                        alive=lambda: procs[-1].p.poll() is None) == ''

        def stored_rows():
            if not (store / 'realrl_replay.json').exists():
                return 0
            return ReplayReader(store).count
        assert wait_for(lambda: stored_rows() >= 40, 60, spin=node.spin), \
            '\n'.join(p.output()[-2000:] for p in procs)
        # a chunk with one row out of bounds, for the step the driver waits on: refused
        high = np.asarray(desc[-1].action_high, np.float32)
        rows = np.zeros((4, len(high)), np.float32)
        rows[2, 0] = high[0] + 0.5
        o = observations[-1]
        bad = ActionChunk(robot_id='arm0', episode_id=o.episode_id, step=o.step, horizon=4,
                          actions=to_f32(rows.reshape(-1)))
        bad.header.frame_id = 'test'  # not the policy's
        bad_pub.publish(bad)

        def refused():
            s = statuses[-1] if statuses else None
            return s is not None and dict(zip(s.rejected_reasons, s.rejected_counts)).get(
                'out_of_range', 0) >= 1
        assert wait_for(refused, 10, spin=node.spin)
    finally:
        for p in reversed(procs):
            p.stop()
    seen = {(o.episode_id, o.instruction) for o in observations}
    assert (0, INSTRUCTIONS[0]) in seen and (1, INSTRUCTIONS[1]) in seen
    reader = ReplayReader(store)
    rows = reader.read_range(0, reader.count, ['episode_id', 'step', 'action', 'instruction'])
    for ep, text in zip(rows['episode_id'], rows['instruction']):
        assert decode_text(text) == INSTRUCTIONS[int(ep) % 2]
    # every stored action is a row, bit for bit, of a chunk planned for that step
    planned = {}
    for c in (c for c in chunks if c.header.frame_id != 'test'):
        for i, row in enumerate(np.asarray(c.actions, np.float32).reshape(c.horizon, -1)):
            planned.setdefault((c.episode_id, c.step + i), []).append(row)
    # (chunks are volatile: the test's reader may match the policy's writer after its first
    # chunks. A step runs a row of a chunk that began at most horizon - 1 steps before it,
    # and a chunk that came late leaves the driver on the one it holds, so the rows checked
    # start horizon - 1 steps after the first chunk this test saw: every chunk they can come
    # from was seen)
    ours = [c for c in chunks if c.header.frame_id != 'test']
    first = min((c.episode_id, c.step) for c in ours)
    first = (first[0], first[1] + max(c.horizon for c in ours) - 1)
    checked = 0
    for ep, step, action in zip(rows['episode_id'], rows['step'], rows['action']):
        if (int(ep), int(step)) >= first:
            assert any(np.array_equal(action, r) for r in planned[int(ep), int(step)]), \
                (ep, step)
            checked += 1
    assert checked >= 20, (checked, first)
    assert len(chunks) < len(rows['step'])  # fewer chunks than steps: rows ran from them
