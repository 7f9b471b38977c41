"""PCA spectrum of a zoo: how many directions the trained weights actually use.

The zoo is the M x D matrix of flattened members (``spec.flatten_stacked``), centred on the
zoo mean. Its spectrum comes from the SVD of that M x D matrix; the D x D covariance is never
formed (D is tens of thousands, M a few hundred). With M members the centred matrix has rank at
most M - 1, so every count below is bounded by M - 1.

Normalisation:
- ``"raw"`` (the default): the weights as they are. This is the space generators sample in and
  alignment acts on, so it is the number a user should read first.
- ``"per_tensor"``: each tensor is divided by one scalar, its RMS deviation from the zoo mean,
  so every tensor has unit average variance per entry. It stops a large-scale layer from
  dominating the count, and shows whether the low dimension is a scale effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from weightspace.errors import WeightspaceError
from weightspace.spec import WeightSpec

NORMALIZATIONS = ("raw", "per_tensor")


def centred_matrix(spec: WeightSpec, stacked: Mapping[str, torch.Tensor], normalize: str = "raw") -> torch.Tensor:
    """The zoo as a centred float64 (M, D) matrix, optionally with per-tensor scaling."""
    if normalize not in NORMALIZATIONS:
        raise WeightspaceError(f"unknown normalisation {normalize!r}; choose one of {', '.join(NORMALIZATIONS)}.")
    x = spec.flatten_stacked(stacked).to(torch.float64)
    if x.shape[0] < 2:
        raise WeightspaceError(f"a spectrum needs at least 2 members, the zoo has {x.shape[0]}.")
    x = x - x.mean(dim=0, keepdim=True)
    if normalize == "per_tensor":
        for a, b in spec.offsets().values():
            rms = x[:, a:b].pow(2).mean().sqrt()
            if rms > 0:  # a tensor that never moves stays at zero rather than dividing by it
                x[:, a:b] /= rms
    return x


def components_for(explained: np.ndarray, threshold: float) -> int:
    """Smallest number of leading components whose explained-variance ratios sum to ``threshold``."""
    if not 0 < threshold <= 1:
        raise WeightspaceError(f"a variance threshold must lie in (0, 1], got {threshold}.")
    if explained.size == 0 or explained.sum() <= 0:
        return 0
    cumulative = np.cumsum(explained)
    # A tiny tolerance so that 'exactly 99%' reached in float arithmetic counts as reached.
    return int(np.searchsorted(cumulative, threshold - 1e-12) + 1)


@dataclass
class Spectrum:
    singular_values: np.ndarray  # of the centred (M, D) matrix, descending
    n_members: int
    n_params: int
    normalize: str

    @property
    def variances(self) -> np.ndarray:
        """Variance along each principal direction (sample variance, divisor M - 1)."""
        return self.singular_values**2 / max(self.n_members - 1, 1)

    @property
    def explained(self) -> np.ndarray:
        total = float((self.singular_values**2).sum())
        if total == 0:
            return np.zeros_like(self.singular_values)
        return self.singular_values**2 / total

    @property
    def cumulative(self) -> np.ndarray:
        return np.cumsum(self.explained)

    @property
    def total_variance(self) -> float:
        return float(self.variances.sum())

    def dims(self, threshold: float) -> int:
        return components_for(self.explained, threshold)

    def to_dict(self, max_components: int = 256) -> dict:
        """JSON-ready summary; the ratio lists are cut at ``max_components`` entries."""
        return {
            "normalize": self.normalize,
            "n_members": self.n_members,
            "n_params": self.n_params,
            "dims_90": self.dims(0.90),
            "dims_99": self.dims(0.99),
            "total_variance": self.total_variance,
            "explained": [float(v) for v in self.explained[:max_components]],
            "cumulative": [float(v) for v in self.cumulative[:max_components]],
        }


def spectrum_of(x: torch.Tensor, normalize: str = "raw") -> Spectrum:
    """Spectrum of an already centred (M, D) matrix (``normalize`` only labels it)."""
    s = torch.linalg.svdvals(x).numpy()
    return Spectrum(singular_values=s, n_members=x.shape[0], n_params=x.shape[1], normalize=normalize)


def pca_spectrum(spec: WeightSpec, stacked: Mapping[str, torch.Tensor], normalize: str = "raw") -> Spectrum:
    """Spectrum of the zoo ``stacked`` (tensors with a leading member axis)."""
    return spectrum_of(centred_matrix(spec, stacked, normalize), normalize)


def principal_scores(x: torch.Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of the rows of the centred matrix ``x`` on its top ``n`` principal axes,
    and the explained-variance ratio of each axis. Signs are fixed so each axis's largest
    loading is positive, which makes maps reproducible across SVD backends."""
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    n = min(n, s.shape[0])
    sign = torch.sign(vh[:n].gather(1, vh[:n].abs().argmax(dim=1, keepdim=True))).squeeze(1)
    sign[sign == 0] = 1
    scores = (u[:, :n] * s[:n]) * sign
    total = (s**2).sum()
    ratio = (s[:n] ** 2 / total) if total > 0 else torch.zeros(n, dtype=s.dtype)
    return scores.numpy(), ratio.numpy()
