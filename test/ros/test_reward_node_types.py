"""The reward node picks its reward function by `type`: the learned success classifier
labels a robot's camera frames over real DDS; a missing weights file stops it with a
message that names the file and how to make one."""
import numpy as np
from ros_env import Proc, executable, wait_for
from sensor_msgs.msg import Image

from realrl_common.convert import fill_image, to_f32
from realrl_common.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from realrl_interfaces.msg import Observation, RewardLabel, RobotDescription
from realrl_reward import classifier_net

SIZE = 24


def toy_frame(rng, success: bool) -> np.ndarray:
    """Noise with a bright square: top left for a success, bottom right otherwise."""
    img = rng.integers(0, 90, (SIZE, SIZE, 3), dtype=np.uint8)
    at = 2 if success else SIZE - 10
    img[at:at + 8, at:at + 8] = 230
    return img


def toy_classifier(path):
    rng = np.random.default_rng(0)
    labels = np.arange(48) % 3 == 0
    frames = np.stack([toy_frame(rng, bool(s)) for s in labels])
    net = classifier_net.train(frames, labels, 1, classifier_net.TrainConfig(epochs=30))
    classifier_net.save(path, net, ('cam',), (SIZE, SIZE))


def observation(step: int, frame: np.ndarray) -> Observation:
    msg = Observation(robot_id='arm0', episode_id=3, step=step, state=to_f32(np.zeros(2)))
    img = Image()
    fill_image(img, frame)
    msg.images = [img]
    return msg


def test_the_classifier_type_labels_camera_frames(ros_node, tmp_path):
    node = ros_node
    toy_classifier(tmp_path / 'cls.pt')
    proc = Proc([executable('realrl_reward', 'reward_node'), '--ros-args',
                 '-p', 'robot_ids:=[arm0]', '-p', 'type:=classifier',
                 '-p', f'params.model_path:={tmp_path / "cls.pt"}'], tmp_path / 'reward.log')
    try:
        labels = []
        node.create_subscription(RewardLabel, '/arm0/reward_label', labels.append, COMMAND_QOS)
        desc = node.create_publisher(RobotDescription, '/arm0/description', LATCHED_QOS)
        desc.publish(RobotDescription(robot_id='arm0', kind='toy', state_dim=2,
                                      state_names=['q'], state_starts=[0], state_stops=[2],
                                      camera_names=['cam'], image_height=SIZE,
                                      image_width=SIZE))
        obs = node.create_publisher(Observation, '/arm0/observation', SENSOR_QOS)
        rng = np.random.default_rng(9)
        frames = {1: toy_frame(rng, True), 2: toy_frame(rng, False)}

        def answered():
            for step, frame in frames.items():
                if not any(label.step == step for label in labels):
                    obs.publish(observation(step, frame))
            return {label.step for label in labels} >= set(frames)
        assert wait_for(answered, 30, step=0.2, spin=node.spin), proc.output()
        got = {label.step: (label.reward, label.success) for label in labels}
        assert got[1] == (1.0, True) and got[2] == (0.0, False)
        assert all(label.episode_id == 3 for label in labels)
    finally:
        proc.stop()


def test_missing_weights_stop_the_node_with_a_clear_error(ros_domain, tmp_path):
    proc = Proc([executable('realrl_reward', 'reward_node'), '--ros-args',
                 '-p', 'type:=classifier', '-p', f'params.model_path:={tmp_path / "no.pt"}'],
                tmp_path / 'reward.log')
    try:
        assert wait_for(lambda: proc.p.poll() is not None, 30), proc.output()
        assert proc.p.returncode == 2
        assert 'no such file' in proc.output() and 'classifier_tool train' in proc.output()
    finally:
        proc.stop()
