"""Linear mode connectivity: is the straight line between two members a path of low loss?

Along theta(lambda) = (1 - lambda) theta_a + lambda theta_b the *barrier* is the largest drop below
the straight line joining the endpoint values (Frankle et al. 2020; Entezari et al. 2022):

    accuracy barrier = max_lambda [ (1 - lambda) acc(0) + lambda acc(1) - acc(lambda) ]
    loss barrier     = max_lambda [ loss(lambda) - ((1 - lambda) loss(0) + lambda loss(1)) ]

Both are 0 at the endpoints, so they are >= 0, and exactly 0 for a model with itself. Members
trained from different random starts are usually separated by a barrier that mostly vanishes
once b's hidden units are permuted to match a's (weight matching, Ainsworth et al. 2023); that
before/after comparison is what ``pair_connectivity`` reports. All lambda points of one pair are
evaluated in one batched forward pass (``evaluate_members``: functional_call + vmap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture
from weightspace.spec import WeightSpec
from weightspace.symmetry.permute import apply_permutation
from weightspace.symmetry.weight_matching import weight_matching
from weightspace.zoo.train import evaluate_members

Params = Mapping[str, torch.Tensor]
# track(iterable, description, total) -> iterable: wraps a loop in a progress bar (or does nothing).
Track = Callable[[Iterable, str, int], Iterable]


def no_progress(iterable: Iterable, description: str = "", total: int = 0) -> Iterable:
    return iterable


def lambda_grid(n: int = 11) -> torch.Tensor:
    if n < 3:
        raise WeightspaceError(f"an interpolation grid needs at least 3 points (both ends and one between), got {n}.")
    return torch.linspace(0.0, 1.0, n)


def interpolate(a: Params, b: Params, lambdas: torch.Tensor) -> dict[str, torch.Tensor]:
    """Stacked params, one member per lambda: (1 - lambda) a + lambda b."""
    out = {}
    for name, ta in a.items():
        lam = lambdas.to(ta.dtype).reshape(-1, *([1] * ta.ndim))
        out[name] = (1 - lam) * ta + lam * b[name]
    return out


def barrier(values: np.ndarray, lambdas: np.ndarray, higher_is_better: bool) -> float:
    """Largest gap between the chord through the endpoint values and the curve (>= 0)."""
    values, lambdas = np.asarray(values, dtype=np.float64), np.asarray(lambdas, dtype=np.float64)
    if lambdas[0] != 0 or lambdas[-1] != 1:
        raise WeightspaceError("a barrier needs the interpolation grid to start at 0 and end at 1.")
    chord = (1 - lambdas) * values[0] + lambdas * values[-1]
    gap = chord - values if higher_is_better else values - chord
    return float(max(gap.max(), 0.0))


@dataclass
class InterpolationCurve:
    lambdas: np.ndarray
    acc: np.ndarray
    loss: np.ndarray

    @property
    def acc_barrier(self) -> float:
        return barrier(self.acc, self.lambdas, higher_is_better=True)

    @property
    def loss_barrier(self) -> float:
        return barrier(self.loss, self.lambdas, higher_is_better=False)


def interpolation_curve(arch: Architecture, a: Params, b: Params, x: torch.Tensor, y: torch.Tensor,
                        lambdas: torch.Tensor | None = None) -> InterpolationCurve:
    """Accuracy and loss on (x, y) at every lambda, in one batched evaluation."""
    lambdas = lambda_grid() if lambdas is None else lambdas
    acc, loss = evaluate_members(arch, interpolate(a, b, lambdas), x, y)
    return InterpolationCurve(lambdas.numpy().astype(np.float64), acc.double().numpy(), loss.double().numpy())


def align_to(spec: WeightSpec, reference: Params, params: Params, seed: int = 0) -> dict[str, torch.Tensor]:
    """``params`` with its hidden units permuted to match ``reference`` (same function)."""
    perms = weight_matching(spec, dict(reference), dict(params), seed=seed)
    return apply_permutation(dict(params), spec, perms)


@dataclass
class PairResult:
    a: int  # member indices in the zoo's stacked order
    b: int
    raw: InterpolationCurve
    aligned: InterpolationCurve | None  # None when alignment was not asked for


def pair_connectivity(arch: Architecture, a: Params, b: Params, x: torch.Tensor, y: torch.Tensor,
                      lambdas: torch.Tensor | None = None, align: bool = True, seed: int = 0,
                      index: tuple[int, int] = (0, 1)) -> PairResult:
    """Interpolation curves a -> b before and (optionally) after aligning b to a."""
    raw = interpolation_curve(arch, a, b, x, y, lambdas)
    aligned = None
    if align:
        aligned = interpolation_curve(arch, a, align_to(arch.spec(), a, b, seed=seed), x, y, lambdas)
    return PairResult(index[0], index[1], raw, aligned)


def _mean_std(values: Sequence[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0}


@dataclass
class BarrierSummary:
    pairing: str  # how pairs were chosen, see sample_pairs
    results: list[PairResult] = field(default_factory=list)

    def curves(self, variant: str) -> list[InterpolationCurve]:
        return [getattr(r, variant) for r in self.results if getattr(r, variant) is not None]

    def stats(self, variant: str) -> dict | None:
        """Mean and std over pairs of both barriers and of the curves themselves."""
        curves = self.curves(variant)
        if not curves:
            return None
        acc = np.stack([c.acc for c in curves])
        loss = np.stack([c.loss for c in curves])
        return {
            "n_pairs": len(curves),
            "acc_barrier": _mean_std([c.acc_barrier for c in curves]),
            "loss_barrier": _mean_std([c.loss_barrier for c in curves]),
            "lambdas": [float(v) for v in curves[0].lambdas],
            "acc_mean": acc.mean(0).tolist(), "acc_std": acc.std(0).tolist(),
            "loss_mean": loss.mean(0).tolist(), "loss_std": loss.std(0).tolist(),
        }

    def to_dict(self) -> dict:
        return {
            "pairing": self.pairing,
            "pairs": [[r.a, r.b] for r in self.results],
            "raw": self.stats("raw"),
            "aligned": self.stats("aligned"),
        }


def sample_pairs(task_ids: Sequence[str], seeds: Sequence[int], descriptors: Sequence[Sequence[float]],
                 k: int, seed: int = 0) -> tuple[list[tuple[int, int]], str]:
    """Up to ``k`` member pairs (seeded) and the rule that produced them.

    ``"same_task"``: two members of one task trained from different seeds, whenever any task has
    several seeds; the barrier then measures the symmetry alone, not a change of task.
    ``"neighbouring_tasks"``: otherwise, each member with the member of another task whose
    descriptor is nearest; the barrier then also contains the (small) task change.
    """
    n = len(task_ids)
    if n < 2:
        raise WeightspaceError(f"mode connectivity needs at least 2 members, the zoo has {n}.")
    rng = np.random.default_rng(seed)
    candidates = [
        (i, j) for i in range(n) for j in range(i + 1, n)
        if task_ids[i] == task_ids[j] and seeds[i] != seeds[j]
    ]
    pairing = "same_task"
    if not candidates:
        pairing = "neighbouring_tasks"
        d = np.asarray(descriptors, dtype=np.float64).reshape(n, -1)
        dist = ((d[:, None, :] - d[None, :, :]) ** 2).sum(-1)
        same = np.asarray(task_ids)[:, None] == np.asarray(task_ids)[None, :]
        dist[same] = np.inf
        found = set()
        for i in range(n):
            if np.isfinite(dist[i]).any():
                j = int(np.argmin(dist[i]))
                found.add((min(i, j), max(i, j)))
        candidates = sorted(found)
        if not candidates:
            raise WeightspaceError("mode connectivity found no pair: every member has the same task and seed.")
    chosen = rng.choice(len(candidates), size=min(k, len(candidates)), replace=False)
    return [candidates[c] for c in sorted(chosen)], pairing


def zoo_connectivity(arch: Architecture, stacked: Params, pairs: Sequence[tuple[int, int]],
                     data_for_pair: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]],
                     pairing: str, lambdas: torch.Tensor | None = None, align: bool = True,
                     seed: int = 0, track: Track = no_progress) -> BarrierSummary:
    """Barriers for the given member pairs; ``data_for_pair(i, j)`` gives the evaluation data."""
    summary = BarrierSummary(pairing)
    for i, j in track(pairs, "mode connectivity", len(pairs)):
        a = {n: t[i] for n, t in stacked.items()}
        b = {n: t[j] for n, t in stacked.items()}
        x, y = data_for_pair(i, j)
        summary.results.append(pair_connectivity(arch, a, b, x, y, lambdas, align=align, seed=seed, index=(i, j)))
    return summary
