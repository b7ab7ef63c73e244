"""The policy node: acts for a described robot, swaps in whole, checked weights only."""
import time

import numpy as np
import torch
from ros_env import Proc, executable, wait_for

from realrl_common.convert import from_f32, to_f32
from realrl_common.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, WEIGHTS_QOS
from realrl_common.weights import chunk_blob
from realrl_interfaces.msg import Action, Observation, PolicyVersion, RobotDescription, WeightChunk
from realrl_policy.models import ActorConfig, GaussianActor
from realrl_policy.weights_blob import pack_actor


def publish_blob(pub, version, blob, corrupt=False):
    for c in chunk_blob(version, blob, 4096):
        data = bytes(b ^ 0xFF for b in c.data) if corrupt and c.index == 1 else c.data
        pub.publish(WeightChunk(version=c.version, index=c.index, count=c.count,
                                total_bytes=c.total_bytes, crc32=c.crc32, data=data))


def start_policy(node, tmp_path, *params: str, state_dim: int = 5,
                 low=(-1.0, -1.0), high=(1.0, 1.0)):
    """A policy node process serving arm0 (its description, of 2 actions within low..high,
    latched first) and this test's ends of its topics: (proc, actions, versions,
    observation publisher, weights publisher)."""
    actions, versions = [], []
    node.create_subscription(Action, '/arm0/action', actions.append, COMMAND_QOS)
    node.create_subscription(PolicyVersion, '/policy/version', versions.append, LATCHED_QOS)
    desc = node.create_publisher(RobotDescription, '/arm0/description', LATCHED_QOS)
    obs_pub = node.create_publisher(Observation, '/arm0/observation', SENSOR_QOS)
    weights = node.create_publisher(WeightChunk, '/learner/weights', WEIGHTS_QOS)
    desc.publish(RobotDescription(robot_id='arm0', state_dim=state_dim, action_dim=2,
                                  action_low=to_f32(list(low)), action_high=to_f32(list(high))))
    proc = Proc([executable('realrl_policy', 'policy_node'), '--ros-args',
                 '-p', 'robot_ids:=[arm0]', '-p', 'deterministic:=true', *params],
                tmp_path / 'policy.log')
    return proc, actions, versions, obs_pub, weights


def test_policy_acts_and_swaps_weights(ros_node, tmp_path):
    node = ros_node
    proc, actions, versions, obs_pub, weights = start_policy(node, tmp_path, low=(-2, 0),
                                                             high=(2, 1))
    try:
        state = np.linspace(-1, 1, 5).astype(np.float32)

        def act(step):
            n = len(actions)
            obs_pub.publish(Observation(robot_id='arm0', episode_id=0, step=step,
                                        state=to_f32(state)))
            return actions[-1] if wait_for(lambda: len(actions) > n, 1.0, spin=node.spin) else None

        assert wait_for(lambda: act(0) is not None, 20, spin=node.spin), proc.output()
        a = act(1)
        assert a.policy_version == 0 and a.step == 1
        lo, hi = np.array([-2, 0]), np.array([2, 1])
        assert np.all(from_f32(a.action) >= lo) and np.all(from_f32(a.action) <= hi)

        torch.manual_seed(3)
        actor = GaussianActor(ActorConfig(hidden_sizes=(32, 32)), 5, 2)
        publish_blob(weights, 7, pack_actor(actor), corrupt=True)
        node.spin(0.5)
        assert act(2).policy_version == 0  # a corrupted blob is never swapped in
        publish_blob(weights, 7, pack_actor(actor))
        assert wait_for(lambda: versions and versions[-1].version == 7, 5, spin=node.spin)
        a = act(3)
        expected = lo + 0.5 * (actor.act(state, deterministic=True) + 1) * (hi - lo)
        assert a.policy_version == 7
        np.testing.assert_allclose(from_f32(a.action), expected, atol=1e-5)

        wrong = GaussianActor(ActorConfig(hidden_sizes=(8,)), 4, 2)  # another robot's shape
        publish_blob(weights, 8, pack_actor(wrong))
        node.spin(0.5)
        assert act(4).policy_version == 7
        assert wait_for(lambda: 'refused weights' in proc.output(), 3)
    finally:
        proc.stop()


def test_chunk_policy_swaps_weights_between_inferences(ros_node, tmp_path):
    """With chunks: overlap and a model 8 ticks slow an inference is nearly always running
    (not forced: most runs); weights that arrive meanwhile are swapped in when it has
    finished, and every later chunk comes whole from them."""
    from realrl_interfaces.msg import ActionChunk
    from realrl_policy.chunk_models import ChunkMLPActor
    node = ros_node
    proc = Proc([executable('realrl_policy', 'policy_node'), '--ros-args',
                 '-p', 'chunks:=overlap', '-p', 'min_inference_s:=0.4'],
                tmp_path / 'policy.log')
    try:
        chunks, versions = [], []
        node.create_subscription(ActionChunk, '/arm0/action_chunk', chunks.append, COMMAND_QOS)
        node.create_subscription(PolicyVersion, '/policy/version', versions.append, LATCHED_QOS)
        desc = node.create_publisher(RobotDescription, '/arm0/description', LATCHED_QOS)
        obs_pub = node.create_publisher(Observation, '/arm0/observation', SENSOR_QOS)
        weights = node.create_publisher(WeightChunk, '/learner/weights', WEIGHTS_QOS)
        lo, hi = np.array([-2, 0], np.float32), np.array([2, 1], np.float32)
        desc.publish(RobotDescription(robot_id='arm0', state_dim=5, action_dim=2,
                                      action_low=to_f32(lo), action_high=to_f32(hi)))
        state = np.linspace(-1, 1, 5).astype(np.float32)
        step = [0]

        def run(seconds):  # a driver at 20 Hz that steps whenever a chunk covers the step
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if any(c.step <= step[0] < c.step + c.horizon for c in chunks[-1:]):
                    step[0] += 1
                obs_pub.publish(Observation(robot_id='arm0', episode_id=0, step=step[0],
                                            state=to_f32(state)))
                node.spin(0.05)
        assert wait_for(lambda: run(0.5) or chunks, 20, spin=node.spin), proc.output()
        assert chunks[0].policy_version == 0 and chunks[0].horizon == 10  # random rows
        actor = ChunkMLPActor(ActorConfig(type='mlp_chunk', hidden_sizes=(16,),
                                          chunk_horizon=12), 5, 2)
        publish_blob(weights, 5, pack_actor(actor))
        run(3.0)
        assert versions and versions[-1].version == 5, proc.output()
        new = [c for c in chunks if c.policy_version == 5]
        assert len(new) >= 3 and all(c.policy_version == 5 for c in chunks[chunks.index(new[0]):])
        expected = lo + 0.5 * (actor.act_chunk(state) + 1) * (hi - lo)  # no instruction
        rows = np.asarray(new[-1].actions, np.float32).reshape(12, 2)
        np.testing.assert_allclose(rows[-1], expected[-1], atol=1e-5)  # past any blending
    finally:
        proc.stop()


def test_a_frozen_policy_exits_on_a_checkpoint_of_another_robot(ros_node, tmp_path):
    """With weights_file (realrl eval) no weights that fit can come later: the node ends with
    status 2 (a bad configuration, not restarted) and says why, instead of idling."""
    ckpt = tmp_path / 'latest.pt'
    torch.save({'version': 3, 'actor_blob': pack_actor(
        GaussianActor(ActorConfig(hidden_sizes=(8,)), 4, 2))}, ckpt)
    proc = Proc([executable('realrl_policy', 'policy_node'), '--ros-args',
                 '-p', 'robot_ids:=[arm0]', '-p', f'weights_file:={ckpt}'],
                tmp_path / 'policy.log')
    try:
        desc = ros_node.create_publisher(RobotDescription, '/arm0/description', LATCHED_QOS)
        desc.publish(RobotDescription(robot_id='arm0', state_dim=5, action_dim=2,
                                      action_low=to_f32([-2, 0]), action_high=to_f32([2, 1])))
        assert wait_for(lambda: proc.p.poll() is not None, 30, spin=ros_node.spin), \
            proc.output()
        assert proc.p.returncode == 2, proc.output()
        assert f'weights_file {ckpt}: cannot serve arm0 with weights v3' in proc.output()
    finally:
        proc.stop()


def test_a_policy_on_a_gpu_this_machine_lacks_exits_saying_so(tmp_path):
    missing = f'cuda:{torch.cuda.device_count()}' if torch.cuda.is_available() else 'cuda'
    proc = Proc([executable('realrl_policy', 'policy_node'), '--ros-args',
                 '-p', 'robot_ids:=[arm0]', '-p', f'device:={missing}'],
                tmp_path / 'policy.log')
    try:
        assert wait_for(lambda: proc.p.poll() is not None, 30), proc.output()
        assert proc.p.returncode == 2, proc.output()   # a bad configuration: not restarted
        assert f"device '{missing}'" in proc.output() and 'set device: cpu' in proc.output()
    finally:
        proc.stop()


def test_policy_stacks_each_robots_frames_per_episode(ros_node, tmp_path):
    """A 'cnn' actor with frame_stack 2 over DDS: the node gives it each observation's frame
    after the episode's previous one (the first repeated at step 0, again at a new episode),
    so its actions are those of an InferenceEngine fed the same observations."""
    from sensor_msgs.msg import Image

    from realrl_common.convert import fill_image
    from realrl_policy.cnn_actor import CNNActor
    from realrl_policy.encoders import EncoderConfig
    from realrl_policy.inference import InferenceEngine
    node = ros_node
    proc, actions, versions, obs_pub, weights = start_policy(node, tmp_path, state_dim=1)
    try:
        torch.manual_seed(0)
        actor = CNNActor(ActorConfig(type='cnn', hidden_sizes=(16,), encoder=EncoderConfig(
            cameras=('front',), channels=4, blocks=1, feature_dim=8, frame_stack=2)), 1, 2)
        blob = pack_actor(actor)
        publish_blob(weights, 1, blob)
        assert wait_for(lambda: versions and versions[-1].version == 1, 20, spin=node.spin), \
            proc.output()
        # observations are best-effort: one sent before the node's subscription is matched is
        # lost, and a lost frame would change every later stack
        assert wait_for(lambda: obs_pub.get_subscription_count() > 0
                        and node.count_publishers('/arm0/action') > 0, 20, spin=node.spin)
        engine = InferenceEngine(deterministic=True)
        engine.add_robot('arm0', 1, [-1, -1], [1, 1])
        assert engine.load(1, blob) == ''
        rng = np.random.default_rng(0)
        for episode, step in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]:
            frame = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            img = Image()
            fill_image(img, frame, 'front')
            n = len(actions)
            obs_pub.publish(Observation(robot_id='arm0', episode_id=episode, step=step,
                                        state=to_f32([0.0]), images=[img]))
            assert wait_for(lambda: len(actions) > n, 20, spin=node.spin), proc.output()
            expected, _ = engine.act('arm0', np.zeros(1, np.float32), {'front': frame},
                                     episode, step)
            assert (actions[-1].episode_id, actions[-1].step) == (episode, step)
            np.testing.assert_allclose(from_f32(actions[-1].action), expected, atol=1e-5)
    finally:
        proc.stop()
