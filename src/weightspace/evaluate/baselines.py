"""Memorization baselines: what a weight generator must beat before it can claim to generate.

Published weight generators were found to reproduce their training checkpoints (or simple
mixtures of them) rather than make new ones. Each baseline below is a cheap way to produce
"new" weights *without* learning anything about tasks; a generator that does not beat them has
shown memorization, not generation.

- ``noisy_copy``: a zoo member plus Gaussian noise, sigma scaled per tensor by that tensor's
  spread over the zoo (so every layer is perturbed by the same relative amount).
- ``member_average``: the mean of k random (aligned) members.
- ``CoordinateGaussian``: an independent Gaussian per coordinate fitted to the (aligned) zoo.
- ``PCAGaussian``: an unconditional Gaussian in the zoo's PCA space (the full-covariance
  Gaussian restricted to the span of the zoo).

All of them expect an aligned zoo for independent-init zoos: averaging or fitting unaligned
members mixes unrelated hidden units, which would make the baselines weaker than they should be.
"""

from __future__ import annotations

from typing import Mapping

import torch

from weightspace.errors import WeightspaceError
from weightspace.spec import WeightSpec

Params = Mapping[str, torch.Tensor]


def tensor_zoo_std(spec: WeightSpec, stacked: Params) -> dict[str, float]:
    """One scale per tensor: the standard deviation of all its entries over all zoo members."""
    return {n: float(stacked[n].float().std()) if stacked[n].numel() > 1 else 0.0 for n in spec.names}


def noisy_copy(params: Params, tensor_std: Mapping[str, float], sigma: float,
               generator: torch.Generator) -> dict[str, torch.Tensor]:
    """``params`` plus N(0, (sigma * tensor_std[name])^2) noise on every entry; sigma=0 copies."""
    if sigma < 0:
        raise WeightspaceError(f"noise sigma must be >= 0, got {sigma}.")
    out = {}
    for name, value in params.items():
        noise = torch.randn(value.shape, generator=generator, dtype=value.dtype)
        out[name] = value + sigma * tensor_std[name] * noise
    return out


def member_average(stacked: Params, k: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The mean of ``k`` distinct members drawn at random (all members when the zoo is smaller)."""
    m = next(iter(stacked.values())).shape[0]
    idx = torch.randperm(m, generator=generator)[: min(k, m)]
    return {name: value[idx].mean(0) for name, value in stacked.items()}


class CoordinateGaussian:
    """Every weight an independent Gaussian with its own zoo mean and std."""

    def __init__(self, spec: WeightSpec, mean: torch.Tensor, std: torch.Tensor):
        self.spec, self.mean, self.std = spec, mean, std

    @classmethod
    def fit(cls, spec: WeightSpec, stacked: Params) -> "CoordinateGaussian":
        flat = spec.flatten_stacked(stacked).double()
        std = flat.std(0, unbiased=True) if flat.shape[0] > 1 else torch.zeros(flat.shape[1], dtype=flat.dtype)
        return cls(spec, flat.mean(0), std)

    def sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        z = torch.randn(n, self.mean.numel(), generator=generator, dtype=torch.float64)
        return self.spec.unflatten((self.mean + z * self.std).float())


class PCAGaussian:
    """A Gaussian with the zoo's mean and covariance, sampled through its principal axes.

    With M members the covariance has rank at most M - 1, so sampling
    ``mean + sum_k z_k * (s_k / sqrt(M - 1)) * v_k`` with z ~ N(0, I) is exact and never forms
    the D x D matrix. ``max_components`` keeps only the leading axes (None keeps all).
    """

    def __init__(self, spec: WeightSpec, mean: torch.Tensor, axes: torch.Tensor, scales: torch.Tensor):
        self.spec, self.mean, self.axes, self.scales = spec, mean, axes, scales

    @classmethod
    def fit(cls, spec: WeightSpec, stacked: Params, max_components: int | None = None) -> "PCAGaussian":
        flat = spec.flatten_stacked(stacked).double()
        m = flat.shape[0]
        if m < 2:
            raise WeightspaceError(f"a PCA-Gaussian needs at least 2 zoo members, got {m}.")
        mean = flat.mean(0)
        _, s, vt = torch.linalg.svd(flat - mean, full_matrices=False)
        keep = int((s > s[0] * 1e-10).sum()) if s[0] > 0 else 0
        if max_components is not None:
            keep = min(keep, max_components)
        return cls(spec, mean, vt[:keep], s[:keep] / (m - 1) ** 0.5)

    @property
    def n_components(self) -> int:
        return int(self.scales.numel())

    def sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        z = torch.randn(n, self.n_components, generator=generator, dtype=torch.float64)
        return self.spec.unflatten((self.mean + (z * self.scales) @ self.axes).float())
