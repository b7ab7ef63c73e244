"""The driver's control loop: pipeline order, holds, labels, outbox and numbering."""
import numpy as np
import pytest

from realrl_common.config import ConfigError, build_config
from realrl_driver.core.episode_loop import EpisodeLoop, LoopConfig


class PointRobot:
    """A 1-D point that moves by its action; the state is [position, target]."""

    action_low = np.array([-1.0], np.float32)
    action_high = np.array([1.0], np.float32)

    def __init__(self):
        self.pos, self.applied, self.holds, self.seeds = 0.0, [], 0, []

    def reset(self, seed):
        self.seeds.append(seed)
        self.pos = 0.0
        return np.array([self.pos, 3.0])

    def apply(self, action):
        self.applied.append(float(action[0]))
        self.pos += float(action[0])
        return np.array([self.pos, 3.0])

    def hold(self):
        self.holds += 1

    def render(self, camera, width, height):
        return np.full((height, width, 3), len(self.applied), np.uint8)


def run_step(loop, t, action=(1.0,), reward=None, success=False, version=7):
    """Answer the current observation like policy + reward would, then tick."""
    obs = loop.obs
    loop.on_action(np.array(action, np.float32), obs.episode_id, obs.step, version)
    loop.on_label(obs.episode_id, obs.step, -abs(3.0 - obs.state[0]) if reward is None else reward,
                  success)
    return loop.tick(t)


def test_first_tick_resets_and_publishes_step_zero():
    robot = PointRobot()
    loop = EpisodeLoop(LoopConfig(seed=10), robot, first_episode=4)
    out = loop.tick(0.0)
    assert out.observation.episode_id == 4 and out.observation.step == 0
    assert robot.seeds == [14]


def test_transition_is_closed_by_the_label_of_the_next_observation():
    robot = PointRobot()
    loop = EpisodeLoop(LoopConfig(), robot)
    loop.tick(0.0)
    out = run_step(loop, 0.1, action=(0.5,))
    assert out.transition is None and out.observation.step == 1
    out = run_step(loop, 0.2, action=(0.25,), reward=-2.5)
    tr = out.transition
    assert (tr.seq, tr.step) == (1, 0)
    assert tr.state[0] == 0.0 and tr.action[0] == 0.5 and tr.next_state[0] == 0.5
    assert tr.reward == -2.5 and tr.policy_version == 7
    assert not tr.terminated and not tr.truncated
    assert robot.applied == [0.5, 0.25]
    assert out.applied[0] == 0.25  # the tick reports what it applied


def test_a_step_closed_while_the_next_action_is_late_goes_out_at_once():
    """The label may come before the action (a robot that labels itself always does): the
    transition it closes is sent on that tick, not only by the resend timer."""
    loop = EpisodeLoop(LoopConfig(), PointRobot())
    loop.tick(0.0)
    run_step(loop, 0.1, action=(0.5,))
    obs = loop.obs
    loop.on_label(obs.episode_id, obs.step, -1.0, False)  # label of s_1, no action for it yet
    out = loop.tick(0.2)
    assert out.repeated and out.applied is None  # holds for the action ...
    assert out.transition is not None and out.transition.seq == 1  # ... but sends the step
    assert loop.tick(0.3).transition is None  # once
    assert loop.due_resends(0.3) == []


def test_success_terminates_and_resets():
    robot = PointRobot()
    loop = EpisodeLoop(LoopConfig(), robot)
    loop.tick(0.0)
    run_step(loop, 0.1)
    out = run_step(loop, 0.2, success=True, reward=0.0)
    assert out.transition.terminated and out.episode.success
    assert out.episode.steps == 1 and out.observation.step == 0
    assert out.observation.episode_id == 1
    assert robot.applied == [1.0]  # the action answering the terminal state is never applied


def test_a_persons_verdict_ends_the_episode_at_its_next_step_over_the_reward_node():
    loop = EpisodeLoop(LoopConfig(), PointRobot())
    loop.tick(0.0)
    run_step(loop, 0.1)
    assert loop.on_human_label(0, success=True, reward=5.0)
    out = run_step(loop, 0.2, reward=-1.0, success=False)  # the reward node disagrees
    assert out.transition.terminated and out.transition.reward == 5.0
    assert out.episode.success and out.observation.episode_id == 1
    # A failure ends the next episode too, unsuccessful; a verdict on a finished episode
    # (it arrived late) changes nothing.
    assert not loop.on_human_label(0, success=True, reward=5.0)
    run_step(loop, 0.3)
    assert loop.on_human_label(1, success=False, reward=-3.0)
    out = run_step(loop, 0.4, reward=0.0, success=True)
    assert out.transition.terminated and out.transition.reward == -3.0
    assert not out.episode.success
    out = run_step(loop, 0.5)
    assert out.transition is None and out.episode is None  # episode 2 goes on as usual
    assert loop.counters['human_labels'] == 2 and loop.counters['stale_human_labels'] == 1


def test_a_verdict_closes_a_step_still_waiting_for_its_label():
    loop = EpisodeLoop(LoopConfig(), PointRobot())
    loop.tick(0.0)
    obs = loop.obs
    loop.on_action(np.array([0.5], np.float32), obs.episode_id, obs.step, 1)
    loop.tick(0.1)  # moved; the reward node's label of s_1 never comes
    assert loop.tick(0.2).repeated
    loop.on_human_label(0, success=True, reward=1.0)
    out = loop.tick(0.3)
    assert out.transition.terminated and out.episode.success


def test_time_limit_truncates():
    loop = EpisodeLoop(LoopConfig(episode_max_steps=3), PointRobot())
    loop.tick(0.0)
    outs = [run_step(loop, 0.1 * i, action=(0.0,)) for i in range(1, 5)]
    assert outs[3].transition.truncated and not outs[3].transition.terminated
    assert outs[3].episode.truncated and outs[3].episode.steps == 3


def test_missing_action_or_label_holds_without_recording():
    robot = PointRobot()
    loop = EpisodeLoop(LoopConfig(watchdog_s=0.25), robot)
    loop.tick(0.0)
    held = loop.tick(0.1)  # no action yet: the same observation goes out again
    assert held.repeated and held.observation.step == 0
    obs = loop.obs
    loop.on_action(np.array([1.0], np.float32), obs.episode_id, obs.step)
    assert loop.tick(0.2).observation.step == 1
    loop.on_action(np.array([1.0], np.float32), 0, 1)  # action but no label for step 1
    for t in (0.3, 0.4, 0.5, 0.6):
        out = loop.tick(t)
        assert out.transition is None and out.repeated and out.observation.step == 1
    assert robot.applied == [1.0]
    assert loop.counters['waiting_label'] == 4 and robot.holds == 1
    loop.on_label(0, 1, -1.0, False)
    out = loop.tick(0.7)
    assert out.transition is not None and out.observation.step == 2


def test_bad_and_stale_actions_never_reach_the_robot():
    robot = PointRobot()
    loop = EpisodeLoop(LoopConfig(), robot)
    loop.tick(0.0)
    for bad in ([np.nan], [2.0], [0.1, 0.1], [np.inf]):
        assert not loop.on_action(np.array(bad, np.float32), 0, 0)
    assert not loop.on_action(np.array([0.1], np.float32), 0, 5)  # answers another step
    assert loop.tick(0.1).repeated and robot.applied == []
    assert loop.guard.rejected_total == 5


def test_intervention_outranks_policy_for_the_same_step():
    loop = EpisodeLoop(LoopConfig(), PointRobot())
    loop.tick(0.0)
    loop.on_action(np.array([-0.5], np.float32), 0, 0, intervention=True)
    loop.on_action(np.array([0.9], np.float32), 0, 0, policy_version=3)
    loop.tick(0.1)
    assert loop.robot.applied == [-0.5]


def test_outbox_keeps_unacked_transitions_and_resends_them():
    loop = EpisodeLoop(LoopConfig(resend_after_s=1.0), PointRobot(), first_seq=100)
    loop.tick(0.0)
    for i in range(1, 6):
        run_step(loop, 0.1 * i, action=(0.0,))
    assert list(loop.outbox) == [100, 101, 102, 103]
    assert loop.on_ack(101) == 2 and list(loop.outbox) == [102, 103]
    assert loop.due_resends(0.9) == []
    assert [t.seq for t in loop.due_resends(1.5)] == [102, 103]
    assert loop.due_resends(1.6) == []  # their clock restarted


def test_an_ack_drops_transitions_that_were_resent_and_so_moved_back_in_the_outbox():
    loop = EpisodeLoop(LoopConfig(resend_after_s=1.0), PointRobot(), first_seq=100)
    loop.tick(0.0)
    for i in range(1, 4):
        run_step(loop, 0.1 * i, action=(0.0,))  # 100, 101 go out at 0.2 and 0.3
    assert [t.seq for t in loop.due_resends(1.25)] == [100]  # re-sent: now last
    run_step(loop, 1.3, action=(0.0,))  # 102 goes out after it
    assert list(loop.outbox) == [101, 100, 102]
    assert loop.on_ack(100) == 1 and list(loop.outbox) == [101, 102]  # 100 was not in front
    assert loop.on_ack(101) == 1 and list(loop.outbox) == [102]
    assert loop.due_resends(2.0) == []  # nothing acknowledged is sent again
    assert [t.seq for t in loop.due_resends(2.4)] == [102]
    assert loop.on_ack(101) == 0 and loop.on_ack(102) == 1 and not loop.outbox
    assert loop.counters['transitions_acked'] == 3


def test_full_outbox_holds_the_robot():
    loop = EpisodeLoop(LoopConfig(outbox_limit=2), PointRobot())
    loop.tick(0.0)
    for i in range(1, 5):
        run_step(loop, 0.1 * i, action=(0.0,))
    assert len(loop.outbox) == 2 and loop.counters['outbox_full'] >= 1
    steps = loop.counters['steps']
    run_step(loop, 1.0)
    assert loop.counters['steps'] == steps
    loop.on_ack(10**9)
    run_step(loop, 1.1)
    assert loop.counters['steps'] == steps + 1


def test_cameras_are_rendered_into_observations_and_transitions():
    loop = EpisodeLoop(LoopConfig(cameras=('front',), image_size=(4, 6)), PointRobot())
    out = loop.tick(0.0)
    assert out.observation.images['front'].shape == (4, 6, 3)
    run_step(loop, 0.1)
    tr = run_step(loop, 0.2).transition
    assert tr.images['front'].shape == (4, 6, 3) and tr.next_images['front'][0, 0, 0] == 1


@pytest.mark.parametrize('values, key', [({'robot_id': 'arm/0'}, 'robot_id'),
                                         ({'control_hz': 0}, 'control_hz'),
                                         ({'image_size': [1]}, 'image_size')])
def test_config_errors_name_the_key(values, key):
    with pytest.raises(ConfigError, match=key):
        build_config(LoopConfig, values)
