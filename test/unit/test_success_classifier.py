"""Unit tests of the success classifier and reward plug-ins (realrl_reward: classifier_net,
classifier_tool, classifier_reward, reward_kinds, node_config)."""
import json

import numpy as np
import pytest
from gl_probe import require_offscreen_rendering

from realrl_common.config import ConfigError, build_config
from realrl_reward import classifier_tool
from realrl_reward.classifier_reward import ClassifierReward, ClassifierRewardConfig
from realrl_reward.classifier_tool import FrameSet
from realrl_reward.node_config import RewardNodeConfig
from realrl_reward.reach_reward import ReachReward, ReachRewardConfig
from realrl_reward.reward_kinds import reward_kind

SIZE = 24


def toy_frame(rng, success: bool) -> np.ndarray:
    """Noise with a bright square: top left for a success, bottom right otherwise."""
    img = rng.integers(0, 90, (SIZE, SIZE, 3), dtype=np.uint8)
    at = 2 if success else SIZE - 10
    img[at:at + 8, at:at + 8] = 230
    return img


def toy_frames(seed: int, episodes: int = 8, per_episode: int = 6) -> FrameSet:
    rng = np.random.default_rng(seed)
    labels = np.array([i % 3 == 0 for i in range(episodes * per_episode)])
    images = np.stack([toy_frame(rng, bool(s)) for s in labels])
    groups = np.repeat(np.arange(episodes), per_episode)
    return FrameSet({'cam': images}, labels, groups)


@pytest.fixture(scope='module')
def toy_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp('classifier')
    toy_frames(0).save(folder / 'frames.npz')
    return folder


def test_the_tool_learns_a_separable_toy_set(toy_model, capsys):
    model = toy_model / 'model.pt'
    code = classifier_tool.main(['train', '--frames', str(toy_model / 'frames.npz'),
                                 '--out', str(model), '--epochs', '30', '--heldout', '0.25'])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and model.is_file()
    assert report['heldout_episodes'] == 2 and report['heldout_frames'] == 12
    assert report['heldout_accuracy'] == 1.0 > report['majority_accuracy']

    reward = ClassifierReward(ClassifierRewardConfig(model_path=str(model)))
    rng = np.random.default_rng(5)  # frames it never saw
    assert reward.label(np.zeros(3), {}, {'cam': toy_frame(rng, True)}) == (1.0, True)
    assert reward.label(np.zeros(3), {}, {'cam': toy_frame(rng, False)}) == (0.0, False)
    with pytest.raises(ValueError, match=r"lacks \['cam'\]"):
        reward.label(np.zeros(3), {}, {'front': toy_frame(rng, True)})
    with pytest.raises(ValueError, match='trained on'):
        reward.label(np.zeros(3), {}, {'cam': np.zeros((32, 32, 3), np.uint8)})


def test_training_needs_both_classes_and_whole_episodes_to_hold_out(tmp_path):
    frames = toy_frames(1, episodes=1)
    with pytest.raises(ValueError, match='at least 2 episodes'):
        classifier_tool.train_and_evaluate(frames, tmp_path / 'm.pt', ('cam',))
    frames = toy_frames(1)
    frames.labels[:] = False
    with pytest.raises(ValueError, match='both classes'):
        classifier_tool.train_and_evaluate(frames, tmp_path / 'm.pt', ('cam',))
    assert not (tmp_path / 'm.pt').exists()


def test_record_sim_labels_frames_by_insertion():
    require_offscreen_rendering()
    frames = classifier_tool.record_sim(3, ('wrist',), (16, 16), seed=3)
    n = len(frames.labels)
    assert frames.images['wrist'].shape == (n, 16, 16, 3)
    assert set(np.unique(frames.groups)) == {0, 1, 2}
    assert frames.labels[frames.groups == 0].any()  # the clean expert gets in
    assert not frames.labels[frames.groups == 2].any()  # aiming beside the hole never does
    assert not frames.labels[np.r_[0, np.flatnonzero(np.diff(frames.groups)) + 1]].any()


def test_record_store_labels_next_frames_by_terminated(tmp_path):
    require_offscreen_rendering()
    from realrl_driver.robots.mujoco_arm.peg_config import MujocoPegDriverConfig
    from realrl_driver.robots.mujoco_arm.record_demos import record_demos
    cfg = build_config(MujocoPegDriverConfig, {'image_size': [16, 16], 'cameras': ['front']})
    report = record_demos(tmp_path / 'run', 2, cfg, seed=3)
    frames = classifier_tool.record_store(tmp_path / 'run', ('front',))
    assert len(frames.labels) == report.transitions and frames.labels.sum() == 2
    assert set(frames.groups) == {0, 1}
    with pytest.raises(ValueError, match='next_obs/image_wrist'):
        classifier_tool.record_store(tmp_path / 'run', ('wrist',))


def test_reward_types_are_looked_up_by_name():
    kind = reward_kind('reach')
    assert kind.config is ReachRewardConfig and kind.factory() is ReachReward
    assert reward_kind('classifier').config is ClassifierRewardConfig
    with pytest.raises(ConfigError, match=r"unknown reward type 'sucess'.*'classifier', "
                                          r"'reach'.*realrl.rewards"):
        reward_kind('sucess')


def test_reward_node_config_picks_the_type_and_checks_its_params(toy_model):
    cfg = build_config(RewardNodeConfig, {'reach': {'mode': 'sparse'}})
    assert cfg.type == 'reach' and cfg.reward_config().mode == 'sparse'
    assert cfg.needed_state_slices() == {'reach.ee_key': 'ee_pos',
                                         'reach.target_key': 'target_pos'}
    cfg = build_config(RewardNodeConfig, {'type': 'classifier', 'params': {
        'model_path': str(toy_model / 'model.pt'), 'threshold': 0.8}})
    assert cfg.reward_config() == ClassifierRewardConfig(str(toy_model / 'model.pt'), 0.8)
    assert cfg.needed_state_slices() == {}
    with pytest.raises(ConfigError, match='unknown reward type'):
        build_config(RewardNodeConfig, {'type': 'nope'})
    with pytest.raises(ConfigError, match='params.*model_path must name'):
        build_config(RewardNodeConfig, {'type': 'classifier'})
    with pytest.raises(ConfigError, match=r"params.*unknown key 'treshold'.*'threshold'"):
        build_config(RewardNodeConfig, {'type': 'classifier', 'params': {
            'model_path': 'm.pt', 'treshold': 0.5}})
    with pytest.raises(ConfigError, match='under `reach`'):
        build_config(RewardNodeConfig, {'params': {'mode': 'sparse'}})


def test_missing_or_foreign_weights_are_named(tmp_path):
    with pytest.raises(ValueError, match='no such file.*classifier_tool train'):
        ClassifierReward(ClassifierRewardConfig(model_path=str(tmp_path / 'none.pt')))
    (tmp_path / 'junk.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='cannot be read|not a success classifier'):
        ClassifierReward(ClassifierRewardConfig(model_path=str(tmp_path / 'junk.pt')))
