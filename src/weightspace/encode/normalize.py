"""Per-tensor normalisation of a zoo's weights.

Tensors of one network live on very different scales (a first-layer weight of a 64-input MLP
is ~0.1, its output bias can be ~1), so a generator that models the flat vector directly
spends its capacity on the large tensors. Each tensor t is mapped to (w - mean_t) / std_t with
one scalar mean and std per tensor, computed over every member and entry of the zoo and stored
with the generator, so decoding is exact up to float rounding.
"""

from __future__ import annotations

from typing import Mapping

import torch

from weightspace.errors import WeightspaceError
from weightspace.spec import WeightSpec

_MIN_STD = 1e-8  # a constant tensor (e.g. a frozen bias) keeps unit scale instead of dividing by 0


class TensorNormalizer:
    def __init__(self, spec: WeightSpec, mean: torch.Tensor, std: torch.Tensor):
        if mean.shape != (len(spec.tensors),) or std.shape != (len(spec.tensors),):
            raise WeightspaceError(
                f"normaliser statistics have shape {tuple(mean.shape)}, the weight space has {len(spec.tensors)} tensors."
            )
        self.spec = spec
        self.mean = mean.float()
        self.std = std.float()
        sizes = torch.tensor([t.numel for t in spec.tensors])
        # Per-entry views of the statistics, for working on flat (M, D) matrices.
        self._mean_flat = torch.repeat_interleave(self.mean, sizes)
        self._std_flat = torch.repeat_interleave(self.std, sizes)

    @classmethod
    def fit(cls, spec: WeightSpec, stacked: Mapping[str, torch.Tensor]) -> "TensorNormalizer":
        spec.validate(stacked, stacked=True, where="zoo weights")
        mean = torch.stack([stacked[t.name].double().mean() for t in spec.tensors])
        std = torch.stack([stacked[t.name].double().std(unbiased=False) for t in spec.tensors])
        return cls(spec, mean.float(), std.clamp_min(_MIN_STD).float())

    # ----- per-tensor dictionaries ----------------------------------------------------------
    def normalize(self, params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {t.name: (params[t.name] - self.mean[i]) / self.std[i] for i, t in enumerate(self.spec.tensors)}

    def denormalize(self, params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {t.name: params[t.name] * self.std[i] + self.mean[i] for i, t in enumerate(self.spec.tensors)}

    # ----- flat (M, D) matrices, the form latents and generators work with ------------------
    def to_flat(self, stacked: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Normalised (M, D) matrix of stacked weights, in spec order."""
        return (self.spec.flatten_stacked(stacked) - self._mean_flat) / self._std_flat

    def from_flat(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Stacked weights from normalised flat rows; differentiable (end-to-end training uses it)."""
        return self.spec.unflatten(flat * self._std_flat + self._mean_flat)

    # ----- persistence -----------------------------------------------------------------------
    def state(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, spec: WeightSpec, state: Mapping[str, torch.Tensor]) -> "TensorNormalizer":
        return cls(spec, state["mean"], state["std"])
