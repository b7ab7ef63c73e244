"""Chunk scheduling in ticks: a model slower than the control period, served through the
real driver loop (EpisodeLoop), never makes the clock wait once chunks overlap."""
import numpy as np
import pytest

from realrl_driver.core.episode_loop import EpisodeLoop, LoopConfig
from realrl_policy.chunk_scheduler import ChunkScheduler, Plan


class LineRobot:
    """A 1-D point that moves by its action."""

    action_low = np.array([-1.0], np.float32)
    action_high = np.array([1.0], np.float32)

    def __init__(self):
        self.pos, self.applied = 0.0, []

    def reset(self, seed):
        self.pos = 0.0
        return np.array([self.pos])

    def apply(self, action):
        self.applied.append(float(action[0]))
        self.pos += float(action[0])
        return np.array([self.pos])

    def hold(self):
        pass

    def render(self, camera, width, height):
        raise AssertionError('no cameras')


def serve(overlap: bool, latency: int, horizon: int = 10, ticks: int = 120,
          max_steps: int = 1000, start_fraction: float = 0.5, latency_window: int = 8):
    """Run the driver loop for ``ticks`` ticks; a fake model answers an observation
    ``latency`` ticks after it was taken, with ``horizon`` rows (row i = 0.01 * (step + i),
    so every applied action says which step it was planned for)."""
    loop = EpisodeLoop(LoopConfig(episode_max_steps=max_steps, control_hz=10.0), LineRobot())
    sched = ChunkScheduler(overlap, start_fraction, latency_window)
    running = None  # (tick it finishes, episode, step)
    held_at = []
    for k in range(ticks):
        if running is not None and running[0] == k:
            _, ep, step = running
            running = None
            rows = 0.01 * (step + np.arange(horizon, dtype=np.float32))[:, None] % 1.0
            plan = sched.finished(rows, version=3)
            if plan is not None:
                assert loop.on_chunk(plan.rows, len(plan.rows), plan.episode_id, plan.start, 3)
        obs = loop.obs
        if obs is not None:
            loop.on_label(obs.episode_id, obs.step, 0.0, False)  # the reward node is fast
        out = loop.tick(0.1 * k)
        if out.repeated:
            held_at.append(k)
        if out.observation is not None and sched.observed(out.observation.episode_id,
                                                          out.observation.step):
            running = (k + latency, out.observation.episode_id, out.observation.step)
    return loop, sched, held_at


def test_overlap_keeps_a_model_three_periods_slow_off_the_clock():
    loop, sched, held = serve(overlap=True, latency=3)
    # only the very first chunk is waited for (nothing to run before it)
    assert held == [1, 2]
    assert loop.counters['waiting_action'] == 2
    assert loop.counters['steps'] == 120 - 1 - 2  # every other tick applied a row
    assert loop.guard.rejected_total == 0
    assert sched.latency == 2  # ticks seen while it ran: in time for the third tick


def test_blocking_waits_for_the_model_at_every_chunk_boundary():
    loop, _, held = serve(overlap=False, latency=3)
    # 10 steps per chunk, then the inference: 2 ticks without a command (its answer is in
    # time for the third), at every chunk
    chunks = loop.counters['chunks_accepted']
    assert chunks == 10 and loop.counters['waiting_action'] == 2 * chunks == len(held)
    assert loop.counters['steps'] == 120 - 1 - 2 * chunks


def test_a_model_slower_than_planned_starts_earlier_instead_of_stalling():
    """Starting with a fifth of a 10-row chunk left (2 rows) is too late for a model that
    takes 5 ticks: once its latency is measured, the scheduler starts 5 rows before the end,
    and only the first chunk is waited for. Without the measure it stalls at every chunk."""
    loop, sched, held = serve(overlap=True, latency=5, start_fraction=0.2, ticks=200)
    assert sched.latency == 4 and sched.start_left(10) == 5
    assert held == [1, 2, 3, 4]
    naive, _, naive_held = serve(overlap=True, latency=5, start_fraction=0.2, ticks=200,
                                 latency_window=0)
    assert naive.counters['waiting_action'] > 10 * 2 and max(naive_held) > 150


def test_a_model_slower_than_a_whole_chunk_stalls_but_every_applied_row_is_its_steps():
    loop, _, _ = serve(overlap=True, latency=12, ticks=150)
    assert loop.counters['waiting_action'] > 0
    assert loop.counters['steps'] > 0


def test_alignment_every_applied_row_was_planned_for_its_step():
    loop, _, _ = serve(overlap=True, latency=3, max_steps=1000)
    applied = np.array(loop.robot.applied)
    # rows are 0.01 * planned step; blended rows lie between the two chunks' plans for the
    # same step, which are equal here (both say 0.01 * step): so every row says its step
    steps = np.arange(len(applied))
    np.testing.assert_allclose(applied, (0.01 * steps) % 1.0, atol=1e-6)


def test_blend_ramps_from_the_old_chunk_to_the_new_over_the_steps_not_executed():
    sched = ChunkScheduler(overlap=True, start_fraction=0.5)
    assert sched.observed(0, 0)
    sched.finished(np.zeros((6, 1)))  # steps 0..5, all zeros
    for step in (1, 2):
        assert not sched.observed(0, step)
    assert sched.observed(0, 3)  # 3 rows left <= 3
    sched.observed(0, 4)  # the robot moved on while the model ran
    plan = sched.finished(np.ones((6, 1)))  # steps 3..8, all ones
    assert isinstance(plan, Plan) and (plan.start, plan.end) == (3, 9)
    # step 3 executed already (skipped by the driver, left as the model said); steps 4 and
    # 5 are covered by both: 1/3 and 2/3 of the way to the new plan; then the new rows
    np.testing.assert_allclose(plan.rows[:, 0], [1, 1 / 3, 2 / 3, 1, 1, 1], atol=1e-6)
    assert sched.latency == 1


def test_a_held_single_action_is_replaced_by_the_next_answer_not_blended():
    """hold_rows: an action repeated over 2 rows; each new observation starts an inference
    and its answer replaces the held rows (blending would mix in the older answer)."""
    sched = ChunkScheduler(overlap=True, start_fraction=0.5)
    assert sched.observed(0, 0)
    sched.finished(np.zeros((2, 1)), blend=False)
    assert sched.observed(0, 1)   # 1 row left <= latency + 1: every observation starts one
    plan = sched.finished(np.ones((2, 1)), blend=False)
    np.testing.assert_allclose(plan.rows[:, 0], [1, 1])


def test_a_chunk_finished_after_its_episode_ended_is_dropped():
    sched = ChunkScheduler()
    assert sched.observed(4, 0)
    sched.observed(5, 0)  # a new episode began while the model ran
    assert sched.finished(np.zeros((3, 2))) is None and sched.dropped == 1
    assert sched.observed(5, 0)  # nothing planned for episode 5: start at once


def test_one_inference_at_a_time_and_stale_observations_start_nothing():
    sched = ChunkScheduler()
    assert sched.observed(0, 5)
    assert not sched.observed(0, 6)  # in flight
    sched.cancel()
    assert not sched.observed(0, 4)  # older than the newest seen
    assert sched.observed(0, 6)
    with pytest.raises(ValueError, match='start_fraction'):
        ChunkScheduler(start_fraction=1.5)
    fresh = ChunkScheduler()
    with pytest.raises(RuntimeError, match='in flight'):
        fresh.finished(np.zeros((1, 1)))
