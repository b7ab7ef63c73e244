"""The driver executes chunks with the guarantees of single actions: every row is checked,
a bad row refuses its chunk (counted), stale chunks are refused, e-stop and a person's
action still win; and the episode's language instruction travels with every step."""
import numpy as np
import pytest

from realrl_common.config import ConfigError, build_config
from realrl_driver.core.episode_loop import EpisodeLoop, LoopConfig

LOW, HIGH = np.array([-1.0, -0.5], np.float32), np.array([1.0, 0.5], np.float32)


class PlaneRobot:
    """A 2-D point that moves by its action."""

    action_low, action_high = LOW, HIGH

    def __init__(self):
        self.pos, self.applied, self.holds = np.zeros(2), [], 0

    def reset(self, seed):
        self.pos = np.zeros(2)
        return self.pos.copy()

    def apply(self, action):
        assert np.all(action >= LOW) and np.all(action <= HIGH)  # what reaches a robot
        self.applied.append(np.asarray(action, np.float32).copy())
        self.pos += action
        return self.pos.copy()

    def hold(self):
        self.holds += 1

    def render(self, camera, width, height):
        raise AssertionError('no cameras')


def started(**cfg):
    loop = EpisodeLoop(LoopConfig(episode_max_steps=50, **cfg), PlaneRobot())
    loop.tick(0.0)
    return loop


def tick(loop, t):
    obs = loop.obs
    loop.on_label(obs.episode_id, obs.step, 0.0, False)
    return loop.tick(t)


def rows(n, value=0.05):
    return np.full((n, 2), value, np.float32) * np.arange(1, n + 1, dtype=np.float32)[:, None]


def test_a_chunk_runs_one_row_a_tick_without_further_messages():
    loop = started()
    assert loop.on_chunk(rows(4), 4, 0, 0, policy_version=9)
    outs = [tick(loop, 0.1 * k) for k in range(1, 6)]
    np.testing.assert_allclose(np.stack([o.applied for o in outs[:4]]), rows(4))
    assert outs[4].applied is None and loop.counters['waiting_action'] == 1  # ran out: holds
    assert loop.counters['chunk_steps'] == 4 and loop.guard.accepted == 1
    trs = [o.transition for o in outs[1:]]
    assert [tr.step for tr in trs] == [0, 1, 2, 3]
    assert all(tr.policy_version == 9 and not tr.intervention for tr in trs)


def test_a_held_action_covers_a_step_whose_answer_is_late_and_is_counted_ahead():
    """A cloud policy's chunk of its action held for 2 steps: the answer for step 1 comes
    after the tick of step 1, which runs on the answer for step 0 (counted); then the
    late answer covers step 2 (one period stale), and so on; nothing holds."""
    loop = started()
    assert loop.on_chunk(rows(2), 2, 0, 0)
    for k in range(1, 5):
        out = tick(loop, 0.1 * k)          # step k - 1: no answer for it yet after tick 1
        assert out.applied is not None and loop.obs.step == k
        if k >= 2:                          # the answer for step k - 1, after its tick
            assert loop.on_chunk(np.full((2, 2), 0.01 * k, np.float32), 2, 0, k - 1)
    assert loop.counters['chunk_steps'] == 4 and loop.counters['waiting_action'] == 0
    assert loop.counters['chunk_steps_ahead'] == 3     # steps 2..4 ran on step 1..3's rows
    np.testing.assert_allclose(loop.robot.applied[-1], [0.03, 0.03])


def test_a_chunk_with_an_out_of_bounds_row_is_refused_whole_and_counted():
    loop = started()
    bad = rows(5)
    bad[2, 1] = 0.75  # above action_high[1] = 0.5
    bad[4, 0] = -3.0
    assert not loop.on_chunk(bad, 5, 0, 0)
    assert loop.guard.rejected['out_of_range'] == 1 and loop.guard.bad_chunk_rows == 2
    nan = rows(3)
    nan[1, 0] = np.nan
    assert not loop.on_chunk(nan, 3, 0, 0)
    assert loop.guard.rejected['non_finite'] == 1 and loop.guard.bad_chunk_rows == 3
    assert not loop.on_chunk(rows(3).reshape(-1)[:5], 3, 0, 0)  # 5 values for 3 rows
    assert loop.guard.rejected['wrong_length'] == 1
    out = tick(loop, 0.1)
    assert out.applied is None and loop.robot.applied == []  # nothing of them moved it


def test_a_row_in_the_tolerance_band_is_set_onto_the_bound():
    loop = started()
    edge = rows(2)
    edge[0, 1] = 0.5 + 5e-7
    assert loop.on_chunk(edge, 2, 0, 0)
    assert tick(loop, 0.1).applied[1] <= 0.5


def test_stale_chunks_are_refused_and_counted():
    loop = started()
    for k in range(1, 4):  # steps 0..2 from a chunk; the loop now waits on step 3
        if k == 1:
            loop.on_chunk(rows(3), 3, 0, 0)
        tick(loop, 0.1 * k)
    assert loop.obs.step == 3
    assert not loop.on_chunk(rows(3), 3, 0, 0)  # covers steps 0..2 only: all executed
    assert not loop.on_chunk(rows(3), 3, 0, 4)  # starts after the step waited on
    assert not loop.on_chunk(rows(9), 9, 1, 0)  # another episode
    assert loop.guard.rejected['stale'] == 3
    assert loop.on_chunk(rows(4), 4, 0, 2)  # from step 2: rows 1.. apply from step 3
    np.testing.assert_allclose(tick(loop, 0.4).applied, rows(4)[1])
    assert not loop.on_chunk(rows(9), 9, 0, 1)  # older than the chunk held
    assert loop.guard.rejected['stale'] == 4


def test_a_persons_action_outranks_the_chunk_row_of_its_step():
    loop = started()
    loop.on_chunk(rows(5), 5, 0, 0)
    tick(loop, 0.1)
    person = np.array([-0.9, 0.0], np.float32)
    assert loop.on_action(person, 0, 1, intervention=True)
    out = tick(loop, 0.2)
    np.testing.assert_allclose(out.applied, person)
    np.testing.assert_allclose(tick(loop, 0.3).applied, rows(5)[2])  # the chunk goes on
    tr = tick(loop, 0.4).transition
    assert tr.step == 2 and not tr.intervention


def test_estop_drops_the_chunk_and_refuses_new_ones():
    loop = started()
    loop.on_chunk(rows(5), 5, 0, 0)
    tick(loop, 0.1)
    loop.estop(True)
    assert tick(loop, 0.2).applied is None
    assert not loop.on_chunk(rows(5), 5, 0, 1)
    assert loop.guard.rejected['estop'] == 1
    loop.estop(False)
    assert tick(loop, 0.3).applied is None  # the dropped chunk does not come back
    assert len(loop.robot.applied) == 1


def test_a_new_episode_drops_the_chunk_and_rows_past_the_step_limit_never_run():
    loop = EpisodeLoop(LoopConfig(episode_max_steps=3), PlaneRobot())
    loop.tick(0.0)
    loop.on_chunk(rows(8), 8, 0, 0)
    for k in range(1, 6):
        tick(loop, 0.1 * k)
    assert len(loop.robot.applied) == 3  # the episode ended at its step limit
    assert loop.obs.episode_id == 1 and loop.obs.step == 0
    assert tick(loop, 0.6).applied is None  # episode 0's rows are gone


def test_the_instruction_goes_into_every_observation_and_transition():
    loop = started(instructions=('pick the red cube', 'push the blue cube'))
    assert loop.obs.instruction == 'pick the red cube'
    loop.on_chunk(rows(3), 3, 0, 0)
    tick(loop, 0.1)
    out = tick(loop, 0.2)
    assert out.observation.instruction == 'pick the red cube'
    assert out.transition.instruction == 'pick the red cube'
    assert LoopConfig(instructions=('a', 'b')).instruction_of(3) == 'b'
    assert LoopConfig(instruction='wipe').instruction_of(7) == 'wipe'


def test_an_instruction_too_long_for_the_store_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match=r'instructions\[1\].*256'):
        build_config(LoopConfig, {'instructions': ['ok', 'x' * 300]})
    with pytest.raises(ConfigError, match='instruction must be at most'):
        build_config(LoopConfig, {'instruction': 'é' * 200})
