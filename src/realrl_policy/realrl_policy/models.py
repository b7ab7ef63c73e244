"""The actor network shared by the policy (acting) and the learner (training).

No ROS imports. Weights travel between processes as bytes of an `.npz` archive, which
holds plain arrays only: loading never unpickles objects.

Actor types are plug-ins: ``ActorConfig.type`` names one registered under the
``realrl.policies`` entry points (``GaussianActor`` is 'mlp', registered by this package).
A type is an ``nn.Module`` class built as ``cls(cfg: ActorConfig, obs_dim, act_dim)``, with
``cfg``, ``obs_dim`` and ``act_dim`` attributes, ``forward(obs, mask=None)`` returning
(sampled action, its log-probability [B, 1], deterministic action), all in (-1, 1), and
``act(obs, deterministic) -> np.ndarray`` for one observation. The weights blob's header
carries the type, so a policy rebuilds the class the learner trained.
"""

import io
import math
import struct
import zipfile
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from realrl_common.config import build_config
from realrl_common.plugins import POLICIES, lookup, registered
from realrl_policy.encoders import EncoderConfig


def module_device(module: nn.Module) -> torch.device:
    """Where a module's parameters are (its inputs go there); the CPU for one without."""
    for p in module.parameters():
        return p.device
    return torch.device('cpu')


ACTIVATIONS = {'relu': nn.ReLU, 'tanh': nn.Tanh, 'elu': nn.ELU}


@dataclass(frozen=True)
class ActorConfig:
    """The actor network: type, hidden layers, activation, log-std bounds."""

    type: str = 'mlp'
    """Actor network type: a name registered under the 'realrl.policies' entry points."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Widths of the hidden layers of the actor MLP."""
    activation: str = 'relu'
    """Hidden-layer nonlinearity, one of ACTIVATIONS."""
    log_std_min: float = -5.0
    """Lower bound of the pre-squash Gaussian's log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the pre-squash Gaussian's log standard deviation."""
    chunk_horizon: int = 1
    """Rows of actions a chunk actor outputs per inference (``chunk_models``); 1 for
    actors that output one action."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Image encoder of actor types that see cameras ('cnn'); unused by 'mlp'."""

    def __post_init__(self):
        known = sorted(ep.name for ep in registered(POLICIES))
        if self.type not in known:
            raise ValueError(f'type {self.type!r} is not a known policy type; known: {known} '
                             f"(a package adds one under the 'realrl.policies' entry points)")
        if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
            raise ValueError(f'hidden_sizes must be one or more positive widths, got '
                             f'{self.hidden_sizes}')
        if self.activation not in ACTIVATIONS:
            raise ValueError(f'activation must be one of {sorted(ACTIVATIONS)}, got '
                             f'{self.activation!r}')
        if int(self.chunk_horizon) < 1:
            raise ValueError(f'chunk_horizon must be >= 1, got {self.chunk_horizon}')
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f'log_std_min ({self.log_std_min}) must be below log_std_max '
                             f'({self.log_std_max})')
        if not isinstance(self.encoder, EncoderConfig):
            raise ValueError(f'encoder must be an EncoderConfig, got '
                             f'{type(self.encoder).__name__}')


def mlp(in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int,
        activation: str) -> nn.Sequential:
    """Linear layers of the given widths with `activation` between them."""
    layers: list[nn.Module] = []
    for width in hidden_sizes:
        layers += [nn.Linear(in_dim, int(width)), ACTIVATIONS[activation]()]
        in_dim = int(width)
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class GaussianActor(nn.Module):
    """Tanh-squashed diagonal Gaussian policy; actions lie in (-1, 1)^act_dim."""

    def __init__(self, cfg: ActorConfig, obs_dim: int, act_dim: int):
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f'obs_dim and act_dim must be >= 1, got {obs_dim}, {act_dim}')
        self.cfg = cfg
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.net = mlp(obs_dim, cfg.hidden_sizes, 2 * act_dim, cfg.activation)

    hidden_dtype: torch.dtype = torch.float32
    """Precision of the products between hidden layers. The learner may set bfloat16 (about
    twice the float32 rate on CPUs with bf16 instructions); the input and output layers, the
    weights and the Gaussian stay float32. The policy process keeps float32."""

    def _mean_log_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = self._outputs(obs).chunk(2, dim=-1)
        lo, hi = self.cfg.log_std_min, self.cfg.log_std_max
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(raw) + 1.0)  # smooth clamp
        return mean, log_std

    def _outputs(self, obs: torch.Tensor) -> torch.Tensor:
        """The MLP's outputs (means and raw log-stds), the hidden-to-hidden products in
        hidden_dtype."""
        dtype = self.hidden_dtype
        if dtype == torch.float32 or len(self.net) < 5:
            return self.net(obs)
        first, activation, *middle, last = self.net
        x = activation(first(obs)).to(dtype)
        for k, layer in enumerate(middle):
            x = (nn.functional.linear(x, layer.weight.to(dtype), layer.bias.to(dtype))
                 if k % 2 == 0 else layer(x))
        return last(x.float())

    def forward(self, obs: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sampled action (reparameterised), its log-probability (shape [B, 1]) and the
        deterministic action tanh(mean).

        `mask` ([B, act_dim] of 0/1) marks the action values a row's robot has (robots of
        several kinds share one actor, realrl_common.embodiment): the others are zeroed and
        count nothing in the log-probability.
        """
        mean, log_std = self._mean_log_std(obs)
        noise = torch.randn_like(mean)
        pre = mean + log_std.exp() * noise
        action = torch.tanh(pre)
        # the Gaussian's log-density at pre: (pre - mean) / std is the noise itself
        gauss = -0.5 * noise.square() - log_std - 0.5 * np.log(2 * np.pi)
        # log(1 - tanh(x)^2) written stably: 2 * (log 2 - x - softplus(-2x)).
        squash = 2.0 * (np.log(2.0) - pre - nn.functional.softplus(-2.0 * pre))
        terms = gauss - squash
        deterministic = torch.tanh(mean)
        if mask is not None:
            terms, action, deterministic = terms * mask, action * mask, deterministic * mask
        log_prob = terms.sum(dim=-1, keepdim=True)
        return action, log_prob, deterministic

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action (float32, act_dim values) for one observation."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(1, -1))
        if x.shape[1] != self.obs_dim:
            raise ValueError(f'observation has {x.shape[1]} values, the actor expects '
                             f'{self.obs_dim}')
        mean, log_std = self._mean_log_std(x.to(module_device(self)))
        pre = mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)
        return torch.tanh(pre)[0].cpu().numpy()


def actor_config_class(actor_type: str) -> type:
    """The config class of a registered actor type (its ``config_class``, a subclass of
    ActorConfig with the type's own fields; else ActorConfig, which also refuses an unknown
    type, naming the known ones)."""
    ep = {ep.name: ep for ep in registered(POLICIES)}.get(actor_type)
    return getattr(ep.load(), 'config_class', ActorConfig) if ep else ActorConfig


def actor_config_from_json(fields: dict, path: str = '') -> ActorConfig:
    """The config a weights blob's header (or a config file's ``actor`` mapping) describes,
    of the class its type declares (``actor_config_class``), checked field by field
    (realrl_common.config.build_config; ``path`` prefixes the keys in errors)."""
    return build_config(actor_config_class(fields.get('type', 'mlp')), fields, path=path)


def build_actor(cfg: ActorConfig, obs_dim: int, act_dim: int) -> nn.Module:
    """A new actor of the registered type cfg.type."""
    return lookup(POLICIES, cfg.type, 'policy type')(cfg, obs_dim, act_dim)


def actor_to_bytes(actor: nn.Module, skip: tuple[str, ...] = ()) -> bytes:
    """The actor's weights as an uncompressed `.npz` archive (float32 arrays), less the
    tensors named in skip."""
    buf = io.BytesIO()
    arrays = {k: v.detach().float().cpu().numpy()
              for k, v in actor.state_dict().items() if k not in skip}
    np.savez(buf, **arrays)
    return buf.getvalue()


class _ViewReader(io.RawIOBase):
    """A read-only file over a bytes-like object, without copying it whole (numpy and
    zipfile read it a piece at a time)."""

    def __init__(self, data):
        super().__init__()
        self._view = memoryview(data).cast('B')
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), len(self._view) - self._pos))
        buffer[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n


def arrays_from_bytes(data, checked: bool = False) -> dict[str, np.ndarray]:
    """The named arrays of `actor_to_bytes` output (any bytes-like object, read in place);
    ValueError if data is not such an archive.

    ``checked``: the archive's bytes were checked whole already (a blob assembled from
    chunks, its CRC-32 right). Each array is then copied once out of ``data`` by numpy
    (which lets go of the GIL), and the zip's CRC of each member is not computed again:
    ``zipfile`` read every tensor a piece at a time, checksumming it, on the thread that
    shares the GIL with the control loop (8.6M parameters: 20-25 ms for the whole unpack
    that way, 10 ms this way; 1.4 ms with views and no copy). The copy is kept: members of
    an archive sit at odd addresses, and tensors should not."""
    try:
        if checked:      # only the zip's directory is read; the members are found in data
            with zipfile.ZipFile(_ViewReader(data)) as directory:
                return _stored_arrays(data, directory)
        archive = np.load(_ViewReader(data), allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError('found a single array, not an archive of named arrays')
        with archive:
            return {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, struct.error) as e:
        raise ValueError(f'actor weights are not a valid .npz archive ({e})') from e


_LOCAL_HEADER = struct.Struct('<4s22xHH')
"""A zip member's local header: signature, 22 bytes we skip, name and extra field lengths."""


def _stored_arrays(data, archive: zipfile.ZipFile) -> dict[str, np.ndarray]:
    """Each ``.npy`` member of an uncompressed (``np.savez``) archive, found in ``data`` and
    copied out of it (aligned, writable), without the member's CRC."""
    view = memoryview(data).cast('B')
    out = {}
    for info in archive.infolist():
        if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith('.npy'):
            raise ValueError(f'member {info.filename!r} is not a stored .npy array')
        magic, name_len, extra_len = _LOCAL_HEADER.unpack_from(view, info.header_offset)
        if magic != b'PK\x03\x04':
            raise ValueError(f'member {info.filename!r} has no local header where the '
                             'directory says')
        start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        member = _ViewReader(view[start:start + info.file_size])
        version = np.lib.format.read_magic(member)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f'member {info.filename!r} is .npy format {version}')
        shape, fortran, dtype = read_header(member)
        count = math.prod(shape)
        if dtype.hasobject or member.tell() + count * dtype.itemsize != info.file_size:
            raise ValueError(f'member {info.filename!r} does not hold {shape} of {dtype}')
        array = np.frombuffer(view, dtype, count, start + member.tell())
        out[info.filename[:-4]] = array.reshape(shape, order='F' if fortran else 'C').copy()
    return out


def actor_from_bytes(cfg: ActorConfig, obs_dim: int, act_dim: int, data: bytes,
                     checked: bool = False) -> nn.Module:
    """A new actor holding the weights of `actor_to_bytes` output.

    Raises ValueError when the bytes are not such an archive or do not fit (cfg, obs_dim,
    act_dim), e.g. when policy and learner disagree on hidden_sizes. ``checked``: see
    `arrays_from_bytes`.

    The actor is built without storage (on the meta device) and takes the archive's arrays
    as its tensors: initialising weights only to overwrite them was half the time of a new
    version at a policy (12.6M parameters: 51 of 98 ms), on the thread that shares the GIL
    with the control loop. An actor that keeps a tensor outside its state dict (which the
    archive cannot fill), or whose constructor reads a tensor's values, is built the
    ordinary way instead.
    """
    try:
        with torch.device('meta'):
            actor = build_actor(cfg, obs_dim, act_dim)
    except (RuntimeError, NotImplementedError):   # its constructor reads a tensor's values
        actor = build_actor(cfg, obs_dim, act_dim)
    expected = actor.state_dict()
    arrays = arrays_from_bytes(data, checked)
    if set(arrays) != set(expected):
        raise ValueError(f'actor weights hold tensors {sorted(arrays)} but a {cfg.type!r} actor '
                         f'with hidden_sizes {cfg.hidden_sizes} has {sorted(expected)}; make '
                         'the policy and learner use the same ActorConfig')
    state = {}
    for key, ref in expected.items():
        if arrays[key].shape != tuple(ref.shape):
            raise ValueError(f'actor weight {key!r} has shape {arrays[key].shape}, expected '
                             f'{tuple(ref.shape)} for obs_dim {obs_dim}, act_dim {act_dim}, '
                             f'hidden_sizes {cfg.hidden_sizes}; make the policy and learner '
                             'agree')
        state[key] = torch.from_numpy(arrays[key].astype(np.float32, copy=False))
    actor.load_state_dict(state, assign=True)
    if _holds_meta(actor):
        actor = build_actor(cfg, obs_dim, act_dim)
        actor.load_state_dict(state)
    actor.eval()
    return actor


def _holds_meta(module: nn.Module) -> bool:
    """Whether a tensor without storage is left anywhere in module: a parameter, a buffer,
    or a tensor attribute of one of its modules."""
    tensors = [t for m in module.modules() for t in vars(m).values()
               if isinstance(t, torch.Tensor)]
    tensors += list(module.parameters()) + list(module.buffers())
    return any(t.is_meta for t in tensors)
