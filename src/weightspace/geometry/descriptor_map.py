"""A 2-D map of a zoo and whether members sit near members of similar tasks.

- ``pca_map``: each member's coordinates on the zoo's two leading principal axes.
- ``descriptor_clustering``: two numbers for "weight-space neighbours have similar tasks":
  * ``spearman``: Spearman rank correlation between all pairwise weight-space distances and the
    matching descriptor distances (a Mantel-style statistic; pairs are not independent, so no
    p-value is given). 1 = distances in weight space order pairs exactly as task distances do.
  * ``knn_r2``: leave-one-out k-nearest-neighbour regression of the descriptor: each member's
    descriptor is predicted as the mean descriptor of its k nearest *other* members in weight
    space; R^2 is pooled over descriptor dimensions. 1 = neighbours have the same task;
    <= 0 = no better than predicting the zoo's mean descriptor.
  Under the permutation symmetry independently initialised members are scattered at random,
  so these scores are what alignment should raise.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from scipy.stats import spearmanr

from weightspace.errors import WeightspaceError
from weightspace.geometry.spectrum import centred_matrix, principal_scores
from weightspace.spec import WeightSpec


def pca_map(spec: WeightSpec, stacked: Mapping[str, torch.Tensor], normalize: str = "raw") -> tuple[np.ndarray, np.ndarray]:
    """(M, 2) coordinates on the two leading principal axes and their explained-variance ratios."""
    return map_of(centred_matrix(spec, stacked, normalize))


def map_of(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``pca_map`` of an already centred (M, D) matrix."""
    coords, ratio = principal_scores(x, 2)
    if coords.shape[1] < 2:  # a 2-member zoo has a single axis; the map still needs two columns
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
        ratio = np.pad(ratio, (0, 2 - ratio.shape[0]))
    return coords, ratio


def pairwise_distances(points: torch.Tensor | np.ndarray) -> np.ndarray:
    """(M, M) Euclidean distances, computed in the rows' own span (exact, cheap when D >> M)."""
    x = torch.as_tensor(np.asarray(points) if not isinstance(points, torch.Tensor) else points).to(torch.float64)
    x = x - x.mean(0, keepdim=True)
    if x.shape[1] > x.shape[0]:
        u, s, _ = torch.linalg.svd(x, full_matrices=False)
        x = u * s
    return torch.cdist(x, x).numpy()


def descriptor_clustering(points, descriptors: Sequence[Sequence[float]], k: int = 5) -> dict:
    """Spearman distance correlation and leave-one-out kNN descriptor R^2 (see module doc)."""
    dist = pairwise_distances(points)
    m = dist.shape[0]
    desc = np.asarray(descriptors, dtype=np.float64).reshape(m, -1)
    if m < 3:
        raise WeightspaceError(f"descriptor clustering needs at least 3 members, the zoo has {m}.")
    out: dict = {"k": int(min(k, m - 1)), "spearman": None, "knn_r2": None}
    if np.allclose(desc, desc[0]):  # one task only: nothing to cluster by
        return out
    ddist = np.sqrt(((desc[:, None, :] - desc[None, :, :]) ** 2).sum(-1))
    upper = np.triu_indices(m, 1)
    rho = spearmanr(dist[upper], ddist[upper]).statistic
    out["spearman"] = None if np.isnan(rho) else float(rho)
    k = out["k"]
    d = dist.copy()
    np.fill_diagonal(d, np.inf)
    # stable sort: ties broken by member order, so the score is deterministic
    neighbours = np.argsort(d, axis=1, kind="stable")[:, :k]
    pred = desc[neighbours].mean(axis=1)
    sst = ((desc - desc.mean(0)) ** 2).sum()
    out["knn_r2"] = float(1.0 - ((pred - desc) ** 2).sum() / sst)
    return out
