"""A policy started from a checkpoint (weights_file, listen_after_file) takes a learner's
partial weights (its frozen part left out) over DDS, and refuses those of another base."""
import copy

import numpy as np
import torch
from ros_env import wait_for
from test_policy_node import publish_blob, start_policy

from realrl_common.convert import from_f32, to_f32
from realrl_interfaces.msg import Observation
from realrl_policy.models import ActorConfig, GaussianActor
from realrl_policy.weights_blob import is_partial, pack_actor


def test_partial_weights_go_onto_the_weights_file_and_not_onto_another_base(ros_node, tmp_path):
    node = ros_node
    torch.manual_seed(3)
    actor = GaussianActor(ActorConfig(hidden_sizes=(32, 32)), 5, 2)
    actor.net[0].requires_grad_(False)  # the learner's freeze: [net.0]
    ckpt = tmp_path / 'latest.pt'
    torch.save({'version': 3, 'actor_blob': pack_actor(actor)}, ckpt)
    with torch.no_grad():  # the learner trains on: only the unfrozen layers move
        actor.net[2].weight.add_(0.3)
    proc, actions, versions, obs_pub, weights = start_policy(
        node, tmp_path, '-p', f'weights_file:={ckpt}', '-p', 'listen_after_file:=true')
    try:
        state = np.linspace(-1, 1, 5).astype(np.float32)
        assert wait_for(lambda: versions and versions[-1].version == 3, 20, spin=node.spin), \
            proc.output()

        partial = pack_actor(actor, partial=True)
        assert is_partial(partial)
        publish_blob(weights, 4, partial)
        assert wait_for(lambda: versions[-1].version == 4, 5, spin=node.spin), proc.output()

        def answered() -> bool:  # best-effort observations: send until one is answered
            obs_pub.publish(Observation(robot_id='arm0', episode_id=0, step=0,
                                        state=to_f32(state)))
            return wait_for(lambda: actions, 0.5, spin=node.spin)

        assert wait_for(answered, 20), proc.output()
        assert actions[-1].policy_version == 4
        np.testing.assert_allclose(from_f32(actions[-1].action),
                                   actor.act(state, deterministic=True), atol=1e-5)

        other = copy.deepcopy(actor)  # another run's frozen layer
        with torch.no_grad():
            other.net[0].weight.add_(0.01)
        publish_blob(weights, 5, pack_actor(other, partial=True))
        assert wait_for(lambda: 'partial weights need the same frozen base' in proc.output(), 5,
                        spin=node.spin), proc.output()
        assert versions[-1].version == 4
    finally:
        proc.stop()
