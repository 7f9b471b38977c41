"""Which layers carry the zoo's variation, and which of them the task changes.

For each block (one tensor, or one layer = its weight and bias together) of a zoo:

- ``variance_share``: the block's share of the zoo's total variance (sum over entries of the
  variance across members). Raw weights, so a block's share reflects both its size and scale.
- ``dims_90``: principal components of the block alone needed for 90% of its variance.
- ``descriptor_r2``: how much of the block's variation the task descriptor predicts. The block's
  top principal-component scores (at most ``top``) are regressed on degree-2 polynomial
  features of the descriptor with ridge regression; the R^2 is out-of-sample (k-fold
  predictions, seeded) and pooled over the components, so it is the fraction of the top-PC
  variance explained. ``top_pcs_share`` says how much of the block those PCs carry.
  Degree 2 lets a rotation angle or a class-subset interaction act non-linearly; out-of-sample
  keeps a large block from "explaining" noise. None when the descriptor is constant or the zoo
  is too small for k-fold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from weightspace.errors import WeightspaceError
from weightspace.geometry.spectrum import components_for
from weightspace.spec import WeightSpec

LEVELS = ("tensor", "layer")


@dataclass
class BlockStats:
    name: str
    tensors: list[str]
    n_params: int
    variance_share: float
    dims_90: int
    descriptor_r2: float | None
    top_pcs_share: float  # share of the block's variance in the PCs the R^2 is measured on

    def to_dict(self) -> dict:
        return asdict(self)


def layer_name(tensor: str) -> str:
    """'fc0.weight' -> 'fc0': tensors that share a module form a layer."""
    return tensor.rsplit(".", 1)[0] if "." in tensor else tensor


def blocks(spec: WeightSpec, level: str) -> dict[str, list[str]]:
    """Block name -> its tensors, in spec order."""
    if level not in LEVELS:
        raise WeightspaceError(f"unknown modularity level {level!r}; choose one of {', '.join(LEVELS)}.")
    out: dict[str, list[str]] = {}
    for name in spec.names:
        out.setdefault(name if level == "tensor" else layer_name(name), []).append(name)
    return out


def polynomial_features(d: np.ndarray) -> np.ndarray:
    """[d_i] and [d_i * d_j for i <= j]: degree-2 features without a constant column."""
    i, j = np.triu_indices(d.shape[1])
    return np.concatenate([d, d[:, i] * d[:, j]], axis=1)


def ridge_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression on features standardised with the training fold's statistics.

    Closed form (features are few): a hand-written solve is ~100x faster than a scikit-learn
    pipeline here, and this runs once per fold, block, variant and zoo."""
    mu, sd = x_train.mean(0), x_train.std(0)
    sd[sd == 0] = 1.0  # a feature constant on this fold carries nothing; leave it at zero
    a, b = (x_train - mu) / sd, (x_test - mu) / sd
    y_mean = y_train.mean(0)
    w = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (y_train - y_mean))
    return b @ w + y_mean


def descriptor_r2(scores: np.ndarray, descriptors: np.ndarray, folds: int = 5, seed: int = 0,
                  alpha: float = 1.0) -> float | None:
    """Pooled out-of-sample R^2 of ``scores`` (M, p) predicted from ``descriptors`` (M, q)."""
    m = scores.shape[0]
    if m < 4 or descriptors.size == 0 or np.allclose(descriptors, descriptors[0]):
        return None
    total = float(((scores - scores.mean(0)) ** 2).sum())
    if total == 0:
        return None
    features = polynomial_features(descriptors)
    pred = np.empty_like(scores)
    for test in np.array_split(np.random.default_rng(seed).permutation(m), min(folds, m)):
        train = np.setdiff1d(np.arange(m), test)
        pred[test] = ridge_predict(features[train], scores[train], features[test], alpha)
    return float(1.0 - ((pred - scores) ** 2).sum() / total)


def modularity(spec: WeightSpec, stacked: Mapping[str, torch.Tensor],
               descriptors: Sequence[Sequence[float]] | None = None, level: str = "layer",
               top: int = 10, folds: int = 5, seed: int = 0) -> list[BlockStats]:
    """One row per block (spec order)."""
    m = stacked[spec.names[0]].shape[0]
    if m < 2:
        raise WeightspaceError(f"per-layer variance needs at least 2 members, the zoo has {m}.")
    desc = None
    if descriptors is not None:
        desc = np.asarray(descriptors, dtype=np.float64).reshape(m, -1)
    centred = {n: stacked[n].reshape(m, -1).to(torch.float64) for n in spec.names}
    centred = {n: t - t.mean(0, keepdim=True) for n, t in centred.items()}
    total = sum(float(t.pow(2).sum()) for t in centred.values())
    rows = []
    for block, names in blocks(spec, level).items():
        x = torch.cat([centred[n] for n in names], dim=1)
        u, s, _ = torch.linalg.svd(x, full_matrices=False)
        var = (s**2).numpy()
        block_total = float(var.sum())
        explained = var / block_total if block_total > 0 else np.zeros_like(var)
        n_top = min(top, int((var > 1e-12 * max(block_total, 1e-300)).sum()))
        r2 = None
        if desc is not None and n_top > 0:
            r2 = descriptor_r2((u[:, :n_top] * s[:n_top]).numpy(), desc, folds=folds, seed=seed)
        rows.append(BlockStats(
            name=block,
            tensors=list(names),
            n_params=int(x.shape[1]),
            variance_share=block_total / total if total > 0 else 0.0,
            dims_90=components_for(explained, 0.90),
            descriptor_r2=r2,
            top_pcs_share=float(explained[:n_top].sum()),
        ))
    return rows
