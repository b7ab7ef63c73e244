"""Chunk inference: the 'mlp_chunk' actor through the weights blob and the engine, the
instruction reaching actors that take language, and the padding of slow-model emulation."""
import numpy as np

from realrl_policy.chunk_inference import infer_chunk, padded
from realrl_policy.chunk_models import ChunkMLPActor
from realrl_policy.inference import InferenceEngine
from realrl_policy.models import ActorConfig, GaussianActor
from realrl_policy.weights_blob import pack_actor

LOW, HIGH = np.array([-2.0, 0.0, -1.0], np.float32), np.array([2.0, 1.0, 1.0], np.float32)


def engine_with(actor) -> InferenceEngine:
    engine = InferenceEngine(deterministic=True)
    engine.add_robot('arm0', 5, LOW, HIGH)
    assert engine.load(4, pack_actor(actor)) == ''
    return engine


def test_a_chunk_actor_serves_its_horizon_in_robot_units_and_reads_the_instruction():
    cfg = ActorConfig(type='mlp_chunk', hidden_sizes=(32,), chunk_horizon=6)
    engine = engine_with(ChunkMLPActor(cfg, 5, 3))  # rebuilt from the blob, as a policy does
    assert type(engine.actor).__name__ == 'ChunkMLPActor' and engine.actor.chunk_horizon == 6
    rng = np.random.default_rng(0)
    state = np.linspace(-1, 1, 5).astype(np.float32)
    rows, version = infer_chunk(engine, 'arm0', state, rng, instruction='pick the red cube')
    assert rows.shape == (6, 3) and version == 4
    assert np.all(rows >= LOW) and np.all(rows <= HIGH)
    same, _ = infer_chunk(engine, 'arm0', state, rng, instruction='pick the red cube')
    other, _ = infer_chunk(engine, 'arm0', state, rng, instruction='push the blue cube')
    np.testing.assert_array_equal(rows, same)  # deterministic
    assert np.abs(rows - other).max() > 1e-4  # the instruction changes the plan


def test_a_single_action_actor_answers_with_a_chunk_of_one_and_random_before_weights():
    engine = engine_with(GaussianActor(ActorConfig(hidden_sizes=(8,)), 5, 3))
    rng = np.random.default_rng(0)
    rows, _ = infer_chunk(engine, 'arm0', np.zeros(5, np.float32), rng, instruction='ignored')
    assert rows.shape == (1, 3)
    held, _ = infer_chunk(engine, 'arm0', np.zeros(5, np.float32), rng, hold_rows=2)
    np.testing.assert_array_equal(held, np.repeat(rows, 2, axis=0))   # the action, held
    fresh = InferenceEngine()
    fresh.add_robot('arm0', 5, LOW, HIGH)
    rows, version = infer_chunk(fresh, 'arm0', np.zeros(5), rng, random_horizon=7)
    assert rows.shape == (7, 3) and version == 0
    assert np.all(rows >= LOW) and np.all(rows <= HIGH) and len(np.unique(rows[:, 0])) == 7


def test_padding_waits_out_the_rest_of_the_minimum_only():
    now, slept = [0.0], []

    def clock():
        return now[0]

    def sleep(s):
        slept.append(s)
        now[0] += s

    def model():
        now[0] += 0.04
        return 'chunk'

    assert padded(model, 0.15, clock, sleep) == ('chunk', 0.15)
    assert np.isclose(slept[0], 0.11)
    slept.clear()
    now[0] = 0.0
    assert padded(lambda: now.__setitem__(0, 0.3) or 'x', 0.15, clock, sleep) == ('x', 0.3)
    assert slept == []
