"""Layer tokens: every tensor cut into fixed-size chunks, each tagged with its layer and position.

Token-space generators (a transformer over a network's chunks, as in p-diff / SANE) need a
sequence of equal-sized vectors. Each tensor is flattened row-major and cut into chunks of
``chunk`` entries; the last chunk of a tensor is zero-padded and a mask marks real entries.
``layer_ids[j]`` is the index of the tensor that token j came from, ``position_ids[j]`` its
chunk index inside that tensor. ``detokenize(tokenize(p)) == p`` exactly (it only reshapes).
"""

from __future__ import annotations

import math
from typing import Mapping

import torch

from weightspace.errors import WeightspaceError
from weightspace.spec import WeightSpec


class LayerTokenizer:
    def __init__(self, spec: WeightSpec, chunk: int = 64):
        if chunk < 1:
            raise WeightspaceError(f"token chunk size must be at least 1, got {chunk}.")
        self.spec = spec
        self.chunk = int(chunk)
        layer, pos, counts = [], [], []
        for i, t in enumerate(spec.tensors):
            n = math.ceil(t.numel / self.chunk)
            counts.append(n)
            layer += [i] * n
            pos += list(range(n))
        self.tokens_per_tensor = counts
        self.layer_ids = torch.tensor(layer, dtype=torch.long)
        self.position_ids = torch.tensor(pos, dtype=torch.long)
        # mask[j, c] is True where entry c of token j holds a real weight, False for padding.
        mask = []
        for t, n in zip(spec.tensors, counts):
            m = torch.zeros(n * self.chunk, dtype=torch.bool)
            m[: t.numel] = True
            mask.append(m.reshape(n, self.chunk))
        self.mask = torch.cat(mask)

    @property
    def n_tokens(self) -> int:
        return len(self.layer_ids)

    def tokenize(self, stacked: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(M, n_tokens, chunk) tokens from weights with a leading member axis."""
        self.spec.validate(stacked, stacked=True, where="weights to tokenize", check_finite=False)
        m = stacked[self.spec.names[0]].shape[0]
        parts = []
        for t, n in zip(self.spec.tensors, self.tokens_per_tensor):
            flat = stacked[t.name].reshape(m, -1)
            pad = n * self.chunk - t.numel
            parts.append(torch.nn.functional.pad(flat, (0, pad)).reshape(m, n, self.chunk))
        return torch.cat(parts, dim=1)

    def detokenize(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weights (leading member axis) from (M, n_tokens, chunk) tokens; padding is dropped."""
        if tokens.dim() != 3 or tokens.shape[1:] != (self.n_tokens, self.chunk):
            raise WeightspaceError(
                f"tokens have shape {tuple(tokens.shape)}, expected (members, {self.n_tokens}, {self.chunk})."
            )
        m = tokens.shape[0]
        out, start = {}, 0
        for t, n in zip(self.spec.tensors, self.tokens_per_tensor):
            flat = tokens[:, start : start + n].reshape(m, n * self.chunk)[:, : t.numel]
            out[t.name] = flat.reshape(m, *t.shape)
            start += n
        return out
