"""A small chunk actor: state + language instruction -> a chunk of actions (type 'mlp_chunk').

It is the reference of the interface the policy node serves chunks through
(``chunk_inference.infer_chunk``; docs/architecture.md, "Action chunks"): a chunk actor has
``chunk_horizon`` (rows per inference) and ``act_chunk(obs, deterministic, **inputs)`` ->
``chunk_horizon x act_dim`` values in [-1, 1]; it says which extra inputs it takes with
``takes_language`` (``inputs['instruction']``: the episode's instruction as a str) and
``takes_images`` (``inputs['images']``: camera -> HxWx3 uint8 frame).

The instruction is read as a bag of its UTF-8 bytes (an ``EmbeddingBag``): no tokenizer or
downloaded vocabulary, enough for a policy to tell a lab's few instructions apart.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from realrl_policy.models import ActorConfig, mlp, module_device

INSTRUCTION_FEATURES = 16
"""Width of the instruction's embedding."""


class ChunkMLPActor(nn.Module):
    """Deterministic MLP from (state, instruction embedding) to ``chunk_horizon`` actions."""

    takes_language = True
    takes_images = False

    def __init__(self, cfg: ActorConfig, obs_dim: int, act_dim: int):
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f'obs_dim and act_dim must be >= 1, got {obs_dim}, {act_dim}')
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.chunk_horizon = int(cfg.chunk_horizon)
        self.words = nn.EmbeddingBag(256, INSTRUCTION_FEATURES, mode='mean')
        self.net = mlp(obs_dim + INSTRUCTION_FEATURES, cfg.hidden_sizes,
                       self.chunk_horizon * act_dim, cfg.activation)

    def forward(self, obs: torch.Tensor, instruction_bytes: list[bytes]) -> torch.Tensor:
        """[B, chunk_horizon, act_dim] actions in (-1, 1) for a batch."""
        words = self._embed(instruction_bytes, obs.shape[0])
        out = self.net(torch.cat([obs, words], dim=-1))
        return torch.tanh(out).view(-1, self.chunk_horizon, self.act_dim)

    def _embed(self, texts: list[bytes], batch: int) -> torch.Tensor:
        ids, offsets = [], []
        for text in (texts or [b''] * batch):
            offsets.append(len(ids))
            ids.extend(text or b'\0')  # an empty instruction is one NUL byte
        device = module_device(self)
        return self.words(torch.tensor(ids, dtype=torch.long, device=device),
                          torch.tensor(offsets, dtype=torch.long, device=device))

    @torch.no_grad()
    def act_chunk(self, obs: np.ndarray, deterministic: bool = False,
                  instruction: str = '', **_inputs) -> np.ndarray:
        """``chunk_horizon x act_dim`` actions (float32, in (-1, 1)) for one observation."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(1, -1))
        if x.shape[1] != self.obs_dim:
            raise ValueError(f'observation has {x.shape[1]} values, the actor expects '
                             f'{self.obs_dim}')
        x = x.to(module_device(self))
        return self.forward(x, [instruction.encode('utf-8')])[0].cpu().numpy()

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """The chunk's first row (the node's single-action mode)."""
        return self.act_chunk(obs, deterministic)[0]
