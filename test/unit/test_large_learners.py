"""Large learners (realrl_learner.algorithms.large, weights_blob's partial blobs): gradient
accumulation, bf16 autocast, frozen parts, and the partial weights a policy applies only on
the same frozen base; real torch, a real replay store and the policy's InferenceEngine."""
import copy

import numpy as np
import pytest
import torch
import yaml
from test_imitation import expert_rows
from test_trainer_chunks import DESC, SIZE, WORDS, record, vla_learner_yaml

from realrl_common.config import build_config
from realrl_learner.algorithms.bc import BC, BCConfig
from realrl_learner.algorithms.hg_dagger import HGDAgger, HGDAggerConfig
from realrl_learner.algorithms.large import autocast
from realrl_learner.node_config import LearnerNodeConfig
from realrl_learner.trainer import Trainer
from realrl_policy.actors.vla_tiny import VLATinyConfig, tokenize
from realrl_policy.inference import InferenceEngine
from realrl_policy.models import ActorConfig
from realrl_policy.node_config import PolicyNodeConfig
from realrl_policy.weights_blob import is_partial, pack_actor
from realrl_policy.weights_file import read_weights_file
from realrl_replay.reader import ReplayReader
from realrl_replay.transition_schema import transition_schema
from realrl_replay.writer import ReplayWriter

torch.set_num_threads(1)
SMALL = ActorConfig(hidden_sizes=(32, 32))
VLA = VLATinyConfig(hidden_sizes=(32,), embed_dim=16, chunk=3, head='regression',
                    image_shape=(3, 16, 16), max_tokens=16)


def vla_batch(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    right = torch.randint(0, 2, (n,), generator=g).bool()
    words = [tokenize('go right' if r else 'go left', VLA.max_tokens) for r in right]
    return {'obs': torch.randn(n, 3, generator=g),
            'image': torch.randint(0, 256, (n, 16, 16, 3), generator=g, dtype=torch.uint8),
            'instruction': torch.as_tensor(np.stack(words)),
            'action_chunk': torch.where(right[:, None, None], 0.5, -0.5).expand(n, 3, 2)}


def assert_same_step(one: BC, accumulated: BC) -> None:
    for (name, a), b in zip(one.actor.named_parameters(), accumulated.actor.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)


def test_two_accumulated_micro_batches_make_the_step_of_the_whole_batch():
    g = torch.Generator().manual_seed(0)
    batch = {'obs': torch.randn(64, 6, generator=g), 'action': torch.rand(64, 2) * 2 - 1}
    one = BC(6, 2, BCConfig(actor=SMALL), seed=3)
    two = BC(6, 2, BCConfig(actor=SMALL, grad_accumulation_steps=2), seed=3)
    one.update(batch)
    two.update(batch)  # the learner samples batch_size x 2 rows; two halves of 32
    assert_same_step(one, two)

    # rows weighted unevenly between the halves (HG-DAgger's robot rows weigh 0)
    weight = torch.zeros(64)
    weight[:5], weight[40:43] = 1.0, 1.0
    batch['intervention'] = weight
    cfg = HGDAggerConfig(actor=SMALL, pretrain_updates=0)
    one = HGDAgger(6, 2, cfg, seed=3)
    three = HGDAgger(6, 2, HGDAggerConfig(actor=SMALL, pretrain_updates=0,
                                          grad_accumulation_steps=3), seed=3)
    one.update(batch)
    three.update(batch)
    assert_same_step(one, three)

    # a vision-language actor's images and instructions are cut along with the rows
    one = BC(3, 2, BCConfig(actor=VLA), seed=3)
    two = BC(3, 2, BCConfig(actor=VLA, grad_accumulation_steps=2), seed=3)
    vla = vla_batch(16, 0)
    one.update(vla)
    two.update(vla)
    assert_same_step(one, two)


def test_bf16_trains_the_toy_reach_task_with_float32_weights():
    obs, action, test_obs, test_act = expert_rows()
    bc = BC(6, 2, BCConfig(actor=ActorConfig(hidden_sizes=(64, 64)), lr=3e-3,
                           precision='bf16'), seed=0)

    def error() -> float:
        with torch.no_grad():
            return float(((bc.actor(test_obs)[2] - test_act) ** 2).mean())

    with autocast('bf16', torch.device('cpu')):  # the forward pass really runs in bf16
        assert bc.actor.net(test_obs).dtype == torch.bfloat16
    before = error()
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        idx = torch.randint(0, len(obs), (128,), generator=g)
        bc.update({'obs': obs[idx], 'action': action[idx]})
    assert error() < 0.05 < before
    assert all(p.dtype == torch.float32 for p in bc.actor.parameters())
    assert all(s['exp_avg'].dtype == torch.float32 for s in bc.opt.state.values())


def test_frozen_parts_stay_bit_identical_and_the_rest_trains():
    bc = BC(3, 2, BCConfig(actor=VLA, lr=3e-3, freeze=('vision', 'embed')), seed=0)
    before = {k: v.clone() for k, v in bc.actor.state_dict().items()}
    assert bc.frozen and all(n.startswith(('vision.', 'embed.')) for n in bc.frozen)
    assert len(bc.opt.param_groups[0]['params']) == len(bc.trainable) < len(before)
    for i in range(20):
        bc.update(vla_batch(16, i))
    after = bc.actor.state_dict()
    resumed = BC(3, 2, BCConfig(actor=VLA, lr=3e-3, freeze=('vision', 'embed')), seed=1)
    resumed.load_state_dict(bc.state_dict())  # a checkpoint resumes with the same freeze
    with pytest.raises(ValueError, match=r"resume with the freeze the run had \(now \['vision'\]"):
        BC(3, 2, BCConfig(actor=VLA, freeze=('vision',))).load_state_dict(bc.state_dict())
    for name in before:
        if name in bc.frozen:
            assert torch.equal(after[name], before[name]), name
        else:
            assert not torch.equal(after[name], before[name]), name


def test_large_learner_fields_are_checked_with_the_fix():
    with pytest.raises(ValueError, match=r"freeze: 'encoder' names no parameters.*'embed', "
                                         r"'head', 'state', 'trunk', 'vision', 'words'"):
        BC(3, 2, BCConfig(actor=VLA, freeze=('vision', 'encoder')))
    with pytest.raises(ValueError, match='freezes every parameter'):
        BC(6, 2, BCConfig(actor=SMALL, freeze=('net',)))
    with pytest.raises(ValueError, match='grad_accumulation_steps must be an integer >= 1'):
        BCConfig(grad_accumulation_steps=0)
    with pytest.raises(ValueError, match=r"precision must be one of \['float32', 'bf16'\]"):
        BCConfig(precision='fp16')
    with pytest.raises(ValueError, match='freeze must be a list'):
        BCConfig(freeze='vision')
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:<index>'"):
        BCConfig(device='gpu')
    if not torch.cuda.is_available():  # this CI machine: a clear error, not a crash later
        with pytest.raises(ValueError, match="device 'cuda:0': torch sees 0 GPU"):
            BC(6, 2, BCConfig(actor=SMALL, device='cuda:0'))
    with pytest.raises(ValueError, match='listen_after_file needs a weights_file'):
        PolicyNodeConfig(listen_after_file=True)


def test_partial_weights_apply_only_on_the_same_frozen_base(tmp_path):
    writer = ReplayWriter.create(tmp_path / 's', transition_schema(DESC),
                                 {'robots': {'arm0': DESC}})
    records, seq = [], 0
    for episode, words in enumerate(['go left', 'go right'] * 2):
        for step in range(6):
            seq += 1
            records.append(record('arm0', seq, episode, step, WORDS[words] * (step + 1) / 6,
                                  words))
    writer.append(records)
    writer.commit()
    fields = yaml.safe_load(vla_learner_yaml(str(tmp_path / 's')))
    fields['algorithm'].update(freeze=['vision'], grad_accumulation_steps=2)
    trainer = Trainer(build_config(LearnerNodeConfig, fields), ReplayReader(tmp_path / 's'),
                      tmp_path / 'ckpt')
    assert len(trainer.sampler.sample()['index']) == 32  # 2 micro-batches of 16
    assert trainer.step()
    full = trainer.next_weights(now=1e9)  # the first version after start is whole
    base_file = read_weights_file(trainer.save_checkpoint())  # a checkpoint is whole too
    assert trainer.step()
    partial = trainer.next_weights(now=1e9)
    assert not is_partial(full[1]) and not is_partial(base_file[1]) and is_partial(partial[1])
    assert len(partial[1]) < len(full[1])

    state, frame = np.zeros(3, np.float32), {'wrist': np.zeros((SIZE, SIZE, 3), np.uint8)}
    want = trainer.algorithm.actor.act_chunk(state, True, instruction='go left', images=frame)
    for base in (full, base_file):  # a policy there from the start, or given weights_file
        engine = InferenceEngine(deterministic=True)
        engine.add_robot('arm0', 3, DESC['action_low'], DESC['action_high'], DESC)
        assert engine.load(*base) == ''
        assert engine.load(*partial) == '' and engine.version == 2
        got = engine.actor.act_chunk(state, True, instruction='go left', images=frame)
        np.testing.assert_array_equal(got, want)

    engine = InferenceEngine(deterministic=True)  # no base: refused, nothing served
    assert 'no actor to apply it on; partial weights need the same frozen base: give the ' \
           'policy weights_file' in engine.load(*partial)
    assert engine.actor is None and engine.version == 0 and engine.refused == 1

    other = copy.deepcopy(trainer.algorithm.actor)  # another run's vision encoder
    with torch.no_grad():
        other.vision[0].weight.add_(0.01)
    engine.load(7, pack_actor(other, trainer.space.to_json()))
    served = engine.actor
    assert 'differ from those of the actor' in engine.load(*partial)
    assert engine.actor is served and engine.version == 7  # keeps serving what it had
    trainer.close()
    writer.close()


def test_vla_tiny_blob_sizes_full_and_partial_with_the_vision_encoder_frozen():
    """The figure for docs/architecture.md: the default vla_tiny, vision frozen."""
    bc = BC(7, 7, BCConfig(actor=VLATinyConfig(), freeze=('vision',)))
    full, partial = pack_actor(bc.actor), pack_actor(bc.actor, partial=True)
    vision = sum(p.numel() for p in bc.actor.vision.parameters())
    print(f'vla_tiny blob: full {len(full)} B, vision frozen {len(partial)} B, '
          f'vision {vision} of {sum(p.numel() for p in bc.actor.parameters())} parameters')
    assert len(full) - len(partial) >= 4 * vision
