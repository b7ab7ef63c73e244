"""A checkpoint served frozen (`realrl eval`, the policy's weights_file) is checked whole
before anything starts: each way a file can be unusable is one error naming the file and
what is wrong, and a good checkpoint reads back the version and actor it was saved with."""
import numpy as np
import pytest
import torch

from realrl_policy.models import ActorConfig, GaussianActor
from realrl_policy.weights_blob import pack_actor, unpack_actor
from realrl_policy.weights_file import read_weights_file


@pytest.fixture
def checkpoint(tmp_path):
    """A checkpoint of the form the Trainer writes: version, actor blob and other state."""
    actor = GaussianActor(ActorConfig(hidden_sizes=(8,)), 5, 2)
    path = tmp_path / 'latest.pt'
    torch.save({'version': 7, 'actor_blob': pack_actor(actor), 'updates': 40,
                'actor': actor.state_dict()}, path)
    return path, actor


def test_a_good_checkpoint_gives_its_version_and_actor(checkpoint):
    path, actor = checkpoint
    version, blob = read_weights_file(path)
    obs = np.arange(5, dtype=np.float32)
    assert version == 7
    assert np.allclose(unpack_actor(blob).act(obs, True), actor.act(obs, True))


def test_a_truncated_checkpoint_is_named_as_such(checkpoint):
    path, _ = checkpoint
    data = path.read_bytes()
    for cut in (len(data) // 2, 100, 0):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=rf'weights_file {path}: not a readable torch '
                                             r'checkpoint \(truncated, or another format\)'):
            read_weights_file(path)


def test_files_of_another_format_or_content_are_refused(tmp_path, checkpoint):
    path, actor = checkpoint
    for content in (b'not a checkpoint\n', b'junk', b'PK\x03\x04' + bytes(60)):
        text = tmp_path / 'notes.pt'
        text.write_bytes(content)
        with pytest.raises(ValueError, match=rf'weights_file {text}: not a readable torch '
                                             r'checkpoint'):
            read_weights_file(text)
    other = tmp_path / 'model.pt'
    torch.save(actor.state_dict(), other)  # a torch file, but a bare state dict
    with pytest.raises(ValueError, match=rf"weights_file {other}: not a learner checkpoint "
                                         r"with an actor \('actor_blob'\)"):
        read_weights_file(other)
    torn = tmp_path / 'torn.pt'
    torch.save({'version': 3, 'actor_blob': pack_actor(actor)[:-50]}, torn)
    with pytest.raises(ValueError, match=rf'weights_file {torn}: its actor blob does not '
                                         r'unpack: actor weights are not a valid .npz'):
        read_weights_file(torn)
    with pytest.raises(ValueError, match=rf'weights_file {tmp_path / "gone.pt"}: no such file'):
        read_weights_file(tmp_path / 'gone.pt')
