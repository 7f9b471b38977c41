"""PCA latent of (normalised) flat weights.

Trained weights of a zoo occupy a low-dimensional subspace (especially from a shared start),
so a few principal directions carry almost all of the variance. ``k`` fixes the number of
components; ``variance`` keeps the fewest components explaining that fraction instead. With
``whiten=True`` coefficients are divided by their standard deviation, giving every latent
axis unit variance over the zoo (what flow and diffusion models want).
"""

from __future__ import annotations

from typing import Mapping

import torch

from weightspace.errors import WeightspaceError

_MIN_SCALE = 1e-8


class PCALatent:
    def __init__(self, mean: torch.Tensor, components: torch.Tensor, scales: torch.Tensor, whiten: bool = False):
        self.mean = mean.float()  # (D,)
        self.components = components.float()  # (k, D), orthonormal rows
        self.scales = scales.float()  # (k,) standard deviation of each coefficient over the zoo
        self.whiten = bool(whiten)

    @property
    def dim(self) -> int:
        return self.components.shape[0]

    @classmethod
    def fit(cls, flat: torch.Tensor, k: int | None = None, variance: float | None = None,
            whiten: bool = False) -> "PCALatent":
        if flat.dim() != 2 or flat.shape[0] < 2:
            raise WeightspaceError(f"PCA needs at least 2 members as an (M, D) matrix, got shape {tuple(flat.shape)}.")
        if variance is not None and not 0 < variance <= 1:
            raise WeightspaceError(f"PCA variance fraction must be in (0, 1], got {variance}.")
        x = flat.double()
        mean = x.mean(0)
        _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
        explained = s**2 / (s**2).sum().clamp_min(1e-30)
        if k is None:
            frac = 1.0 if variance is None else variance
            # fewest components whose cumulative share reaches the fraction (tolerating rounding)
            k = int((explained.cumsum(0) < frac - 1e-9).sum()) + 1
        if k < 1:
            raise WeightspaceError(f"PCA needs at least one component, got k={k}.")
        # Never keep directions the zoo does not vary in: whitening would divide by ~0 there.
        rank = int((s > s[0] * 1e-6).sum()) if s.numel() and s[0] > 0 else 1
        k = min(int(k), max(rank, 1))
        scales = (s[:k] / flat.shape[0] ** 0.5).clamp_min(_MIN_SCALE)
        out = cls(mean, vh[:k], scales, whiten)
        out.explained = explained[:k].float()
        return out

    def encode(self, flat: torch.Tensor) -> torch.Tensor:
        z = (flat - self.mean) @ self.components.T
        return z / self.scales if self.whiten else z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] != self.dim:
            raise WeightspaceError(f"latent has {z.shape[-1]} entries, the PCA latent has {self.dim}.")
        if self.whiten:
            z = z * self.scales
        return z @ self.components + self.mean

    def state(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "components": self.components, "scales": self.scales}

    def config(self) -> dict:
        return {"type": "pca", "whiten": self.whiten, "dim": self.dim}

    @classmethod
    def from_state(cls, config: Mapping, state: Mapping[str, torch.Tensor]) -> "PCALatent":
        return cls(state["mean"], state["components"], state["scales"], bool(config.get("whiten", False)))
