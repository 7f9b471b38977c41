"""Intrinsic dimension of a point cloud (a zoo's flattened weights) from nearest-neighbour distances.

Two estimators that rest on the same local assumption (density roughly constant over a few
neighbours) but use different neighbourhoods, so agreement between them is informative:

- **TwoNN** (Facco, d'Errico, Rodriguez & Laio, Sci. Rep. 2017): only the ratio
  mu = r2 / r1 of each point's second- to first-neighbour distance. For a d-dimensional manifold
  mu is Pareto distributed, P(mu > t) = t^-d, so -log(1 - F(mu)) = d log(mu). d is the slope of
  that line through the origin, fitted after dropping the largest 10% of mu as in the paper.
- **Levina–Bickel MLE** (NeurIPS 2004) over k neighbours, with the MacKay & Ghahramani (2005)
  correction: average the per-point inverse estimates, then invert.

Points that coincide exactly (duplicate members) have r1 = 0 and carry no information about
dimension; they are collapsed to one before estimating, and the count used is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from weightspace.errors import WeightspaceError


@dataclass
class IntrinsicDim:
    two_nn: float
    mle: float
    mle_k: int
    n_points: int  # distinct points used

    def to_dict(self) -> dict:
        return {"two_nn": self.two_nn, "mle": self.mle, "mle_k": self.mle_k, "n_points": self.n_points}


def _as_distinct_rows(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """float64 copy of the distinct rows, moved into an isometric N-dimensional frame.

    Distances between rows are unchanged by centring and by rotating onto the rows' own span
    (the U S of a thin SVD), so neighbour search costs O(N^2 N) instead of O(N^2 D)."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(torch.float64)
    if x.ndim != 2:
        raise WeightspaceError(f"intrinsic dimension needs an (N, D) matrix of points, got shape {tuple(x.shape)}.")
    if not torch.isfinite(x).all():
        raise WeightspaceError("intrinsic dimension: the points contain NaN or infinite values.")
    x = torch.unique(x, dim=0)
    x = x - x.mean(dim=0, keepdim=True)
    if x.shape[1] > x.shape[0]:
        u, s, _ = torch.linalg.svd(x, full_matrices=False)
        x = u * s
    return x


def neighbour_distances(x: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """(N, k) ascending distances from each row of ``x`` to its k nearest other rows."""
    n = x.shape[0]
    if k >= n:
        raise WeightspaceError(f"{k} neighbours need at least {k + 1} distinct points, there are {n}.")
    out = []
    sq = (x * x).sum(dim=1)
    for start in range(0, n, chunk):
        rows = x[start:start + chunk]
        # |a-b|^2 = |a|^2 + |b|^2 - 2ab in float64; clamp the tiny negatives rounding leaves.
        d2 = (sq[start:start + chunk, None] + sq[None, :] - 2 * rows @ x.T).clamp_min(0)
        idx = torch.arange(rows.shape[0])
        d2[idx, start + idx] = float("inf")  # a point is not its own neighbour
        out.append(d2.topk(k, dim=1, largest=False).values.sqrt())
    return torch.cat(out)


def two_nn(points, discard: float = 0.1) -> float:
    """TwoNN estimate of the intrinsic dimension of ``points`` (N, D)."""
    x = _as_distinct_rows(points)
    if x.shape[0] < 3:
        raise WeightspaceError(f"TwoNN needs at least 3 distinct points, got {x.shape[0]}.")
    r = neighbour_distances(x, 2)
    mu = np.sort((r[:, 1] / r[:, 0]).numpy())
    n = mu.shape[0]
    keep = max(2, int(np.floor(n * (1 - discard))))
    f = np.arange(1, n + 1) / n  # empirical CDF at each sorted mu
    xs, ys = np.log(mu[:keep]), -np.log1p(-f[:keep])
    ys = ys[np.isfinite(ys)]
    xs = xs[: ys.shape[0]]
    denom = float((xs * xs).sum())
    if denom == 0:  # every point's two neighbours are equidistant: no scale information
        raise WeightspaceError("TwoNN is undefined here: every point's first two neighbours are equally far.")
    return float((xs * ys).sum() / denom)


def levina_bickel(points, k: int = 10) -> tuple[float, int]:
    """Levina–Bickel MLE over ``k`` neighbours (clipped to the number of points); returns (dim, k used)."""
    x = _as_distinct_rows(points)
    k = min(k, x.shape[0] - 1)
    if k < 3:
        raise WeightspaceError(f"the MLE estimator needs at least 4 distinct points, got {x.shape[0]}.")
    t = neighbour_distances(x, k)
    # per point: mean over j < k of log(T_k / T_j); its inverse is that point's estimate
    logs = torch.log(t[:, -1:] / t[:, :-1]).mean(dim=1)
    mean_inverse = float(logs.mean())
    if mean_inverse <= 0:
        raise WeightspaceError("the MLE estimator is undefined here: neighbour distances do not grow.")
    return 1.0 / mean_inverse, k


def intrinsic_dimension(points, k: int = 10) -> IntrinsicDim:
    """Both estimators on the same points."""
    x = _as_distinct_rows(points)
    mle, k_used = levina_bickel(x, k)
    return IntrinsicDim(two_nn=two_nn(x), mle=mle, mle_k=k_used, n_points=x.shape[0])
