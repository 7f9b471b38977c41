"""Low-rank latent: each layer's weights as a base plus a rank-r delta, as LoRA adapts a model.

A zoo fine-tuned from one shared start differs from that start by small, structured deltas.
Writing every layer's delta as U Vᵀ (U: out x r, V: in x r; a conv kernel is its
(out, in·kh·kw) matrix) and every bias delta in full, a network of D weights has a latent of

    dim = Σ_weights r·(out + in) + Σ_biases numel        (1.1M weights, r = 8: about 33k)

so a hypernetwork's output layer grows with the layers' widths, not with their product, and
decoding costs one small matrix product per layer: linear in the number of weights.

Works on normalised flat vectors (encode/normalize.py: one scalar mean and std per tensor,
which keeps a low-rank delta low-rank). ``base`` is the normalised start (the zoo member
nearest the zoo's centre: for a shared-start zoo, about the start plus the typical task).
``init_vector`` is the latent to start a generator at: U = 0 and V small and random, so the
first output is the base and both factors receive gradients (U = V = 0 is a saddle).
``encode`` (for regression targets) is the best rank-r approximation of each delta (SVD).
"""

from __future__ import annotations

from typing import Mapping

import torch

from weightspace.errors import WeightspaceError
from weightspace.spec import WeightSpec


class LowRankLatent:
    def __init__(self, spec: WeightSpec, base: torch.Tensor, rank: int):
        if rank < 1:
            raise WeightspaceError(f"low-rank latent needs rank >= 1, got {rank}.")
        self.spec, self.base, self.rank = spec, base.float(), int(rank)
        # per tensor: (offset in flat, out, in, rank used) for matrices; (offset, numel) for vectors
        self.parts: list[tuple[str, int, int, int, int]] = []
        offset, z = 0, 0
        for t in spec.tensors:
            if len(t.shape) >= 2:
                out, inner = t.shape[0], t.numel // t.shape[0]
                r = min(self.rank, out, inner)
                self.parts.append(("matrix", offset, out, inner, r))
                z += r * (out + inner)
            else:
                self.parts.append(("vector", offset, t.numel, 1, 0))
                z += t.numel
            offset += t.numel
        self.dim = z
        self._raw_base, self._raw_base_of = {}, None  # the base denormalised, per normaliser (decode_weights)

    @classmethod
    def fit(cls, spec: WeightSpec, flat: torch.Tensor, rank: int) -> "LowRankLatent":
        if flat.dim() != 2 or flat.shape[0] < 1:
            raise WeightspaceError(f"low-rank latent needs an (M, D) matrix of members, got shape {tuple(flat.shape)}.")
        medoid = int(((flat - flat.mean(0)) ** 2).sum(1).argmin())
        return cls(spec, flat[medoid].clone(), rank)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(n, dim) latents -> (n, D) normalised flat weights (differentiable)."""
        pieces, at = [], 0
        for kind, _offset, a, b, r in self.parts:
            if kind == "matrix":
                u = z[:, at: at + a * r].reshape(-1, a, r)
                v = z[:, at + a * r: at + r * (a + b)].reshape(-1, b, r)
                pieces.append((u @ v.transpose(1, 2)).reshape(z.shape[0], a * b))
                at += r * (a + b)
            else:
                pieces.append(z[:, at: at + a])
                at += a
        return self.base + torch.cat(pieces, dim=1)

    def decode_weights(self, z: torch.Tensor, normalizer) -> dict[str, torch.Tensor]:
        """(n, dim) latents -> stacked denormalised weights, the values of
        ``normalizer.from_flat(decode(z))`` without the flat vector: each matrix is one batched
        ``base + std·U Vᵀ`` written in place of five passes over a million floats (differentiable)."""
        if self._raw_base_of is not normalizer:
            with torch.no_grad():
                self._raw_base = {k: v[0] for k, v in normalizer.from_flat(self.base[None]).items()}
            self._raw_base_of = normalizer
        out, at, n = {}, 0, z.shape[0]
        for t, (kind, _offset, a, b, r), std in zip(self.spec.tensors, self.parts, normalizer.std.tolist()):
            base = self._raw_base[t.name]
            if kind == "matrix":
                u = z[:, at: at + a * r].reshape(n, a, r)
                v = z[:, at + a * r: at + r * (a + b)].reshape(n, b, r)
                out[t.name] = torch.baddbmm(base.reshape(1, a, b), u, v.transpose(1, 2), alpha=std).reshape(n, *t.shape)
                at += r * (a + b)
            else:
                out[t.name] = torch.add(base, z[:, at: at + a].reshape(n, *t.shape), alpha=std)
                at += a
        return out

    @torch.no_grad()
    def encode(self, flat: torch.Tensor) -> torch.Tensor:
        """The best rank-r factors of each member's delta from the base (U = U_r S^½, V = V_r S^½)."""
        delta = flat.float() - self.base
        out = []
        for kind, offset, a, b, r in self.parts:
            if kind == "matrix":
                m = delta[:, offset: offset + a * b].reshape(-1, a, b)
                u, s, vh = torch.linalg.svd(m, full_matrices=False)
                root = s[:, :r].sqrt()
                out += [(u[:, :, :r] * root[:, None]).flatten(1), (vh[:, :r].transpose(1, 2) * root[:, None]).flatten(1)]
            else:
                out.append(delta[:, offset: offset + a])
        return torch.cat(out, dim=1)

    def init_vector(self, seed: int = 0, scale: float = 0.01) -> torch.Tensor:
        """A latent whose decoding is the base, with nonzero V so gradients reach U (see module doc)."""
        g = torch.Generator().manual_seed(seed)
        out = []
        for kind, _offset, a, b, r in self.parts:
            if kind == "matrix":
                out += [torch.zeros(a * r), scale * torch.randn(b * r, generator=g)]
            else:
                out.append(torch.zeros(a))
        return torch.cat(out)

    # ----- persistence -----------------------------------------------------------------------
    def config(self) -> dict:
        return {"type": "lowrank", "rank": self.rank}

    def state(self) -> dict[str, torch.Tensor]:
        return {"base": self.base}

    @classmethod
    def from_state(cls, spec: WeightSpec, config: Mapping, state: Mapping[str, torch.Tensor]) -> "LowRankLatent":
        return cls(spec, state["base"], int(config["rank"]))
