"""The geometry stage for one zoo: every number ``weightspace analyze`` reports, as a dict.

For a zoo it measures each *variant* of the weights:
- ``raw``: the members as trained;
- ``aligned``: every member permuted onto the zoo's barycentre (``symmetry.align_zoo``), unless
  the zoo starts from shared weights (then there is no permutation to undo) or alignment is off;
and, on the tasks' own test data, linear-mode-connectivity barriers between member pairs before
and after pairwise weight matching. Plots and tables are the CLI's business; this module only
computes, so reports and notebooks can call it too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from weightspace.config import option
from weightspace.errors import WeightspaceError
from weightspace.geometry.connectivity import Track, lambda_grid, no_progress, sample_pairs, zoo_connectivity
from weightspace.geometry.descriptor_map import descriptor_clustering, map_of
from weightspace.geometry.intrinsic_dim import intrinsic_dimension
from weightspace.geometry.modularity import modularity
from weightspace.geometry.spectrum import centred_matrix, pca_spectrum, spectrum_of
from weightspace.spec import WeightSpec
from weightspace.symmetry.align_zoo import align_zoo
from weightspace.tasks import family_from_dict

# counter(description) -> report(done, total): a progress bar for steps that report counts.
Counter = Callable[[str], Callable[[int, int], None]]


@dataclass
class AnalyzeConfig:
    pairs: int = option(8, "member pairs for the mode-connectivity barriers (fewer if the zoo has fewer)")
    align: bool = option(True, "also analyse barycentre-aligned weights and weight-matched barriers")
    lambdas: int = option(11, "points on the interpolation path, both ends included")
    eval_examples: int = option(1000, "test examples per task used for each barrier curve")
    align_iters: int = option(3, "barycentre rounds of align_zoo (align to the mean, recompute it)")
    mle_k: int = option(10, "neighbours of the Levina-Bickel estimator")
    knn_k: int = option(5, "neighbours of the kNN descriptor regression")
    seed: int = option(0, "seed of pair sampling, weight matching and cross-validation folds")
    min_members: int = option(4, "refuse zoos smaller than this: the estimators need neighbours")


def init_kind(inits: Sequence[str]) -> str:
    """'independent', 'shared', 'imported' or 'mixed' from the members' init strings."""
    kinds = {s.split(":", 1)[0] for s in inits}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def analyze_weights(spec: WeightSpec, stacked: Mapping[str, torch.Tensor], descriptors: np.ndarray,
                    cfg: AnalyzeConfig) -> dict:
    """Spectrum, intrinsic dimension, descriptor clustering, modularity and the 2-D map."""
    x = centred_matrix(spec, stacked, "raw")
    coords, ratio = map_of(x)
    return {
        "spectrum": spectrum_of(x, "raw").to_dict(),
        "spectrum_per_tensor": pca_spectrum(spec, stacked, "per_tensor").to_dict(),
        "intrinsic_dim": intrinsic_dimension(x, k=cfg.mle_k).to_dict(),
        "clustering": descriptor_clustering(x, descriptors, k=cfg.knn_k),
        "modularity_layers": [r.to_dict() for r in modularity(spec, stacked, descriptors, "layer", seed=cfg.seed)],
        "modularity_tensors": [r.to_dict() for r in modularity(spec, stacked, descriptors, "tensor", seed=cfg.seed)],
        "map": {"coords": coords.tolist(), "explained": ratio.tolist()},
    }


class _TestData:
    """Test sets of a family's tasks, built once each and cut to ``limit`` examples."""

    def __init__(self, family, limit: int):
        self.family = family
        self.limit = limit
        self.cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, task_id: str) -> tuple[torch.Tensor, torch.Tensor]:
        if task_id not in self.cache:
            task = self.family.task(task_id)
            self.cache[task_id] = (task.x_test[: self.limit], task.y_test[: self.limit])
        return self.cache[task_id]

    def for_pair(self, task_a: str, task_b: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One task's test set, or both concatenated when the pair spans two tasks."""
        xa, ya = self(task_a)
        if task_b == task_a:
            return xa, ya
        xb, yb = self(task_b)
        return torch.cat([xa, xb]), torch.cat([ya, yb])


def descriptor_space(family, records) -> tuple[np.ndarray, str]:
    """The coordinates in which task distances are measured, and what they are.

    A family's ``descriptor_features`` (e.g. (cos, sin) of a rotation angle, so 355 and 0
    degrees are neighbours) when it has them, else the recorded descriptors as they are."""
    features = getattr(family, "descriptor_features", None)
    if callable(features):
        rows = [list(features(r.task_id)) for r in records]
        return np.asarray(rows, dtype=np.float64).reshape(len(records), -1), "family descriptor_features"
    rows = [list(r.descriptor) for r in records]
    return np.asarray(rows, dtype=np.float64).reshape(len(records), -1), "recorded descriptors"


def analyze_zoo(zoo, cfg: AnalyzeConfig, track: Track = no_progress, counter: Counter | None = None) -> dict:
    """All geometry numbers of one zoo (a ``weightspace.zoo.store.Zoo``).

    ``track`` wraps loops and ``counter`` makes count-based callbacks, both for progress bars."""
    records = zoo.records()
    m = len(records)
    if m < cfg.min_members:
        raise WeightspaceError(f"the zoo at {zoo.path} has {m} final members; analysis needs at least {cfg.min_members}.")
    spec: WeightSpec = zoo.spec
    stacked = zoo.load([r.member_id for r in records])
    family = family_from_dict(zoo.family)
    descriptors = np.asarray([list(r.descriptor) for r in records], dtype=np.float64).reshape(m, -1)
    task_space, task_space_name = descriptor_space(family, records)
    inits = [r.init for r in records]
    kind = init_kind(inits)
    result: dict = {
        "path": str(zoo.path),
        "name": zoo.path.name,
        "arch": zoo.arch.to_dict(),
        "family": zoo.family.get("name"),
        "init": sorted(set(inits))[0] if len(set(inits)) == 1 else "mixed",
        "init_kind": kind,
        "n_members": m,
        "n_tasks": len({r.task_id for r in records}),
        "n_params": spec.numel,
        "descriptor_names": _descriptor_names(family, descriptors.shape[1]),
        "descriptors": descriptors.tolist(),
        "task_distance_space": task_space_name,
        "variants": {},
    }
    skip = None
    if not cfg.align:
        skip = "alignment turned off (--no-align)"
    elif kind == "shared":
        skip = "shared-start zoo: members share one initialisation, so there is no permutation to undo"
    elif not spec.groups:
        skip = "the architecture has no permutation symmetry"
    result["alignment"] = {"skipped": skip}

    variants = ["raw"] if skip else ["raw", "aligned"]
    weights = {"raw": stacked}
    if "aligned" in variants:
        start = time.perf_counter()
        report = counter(f"{zoo.path.name}: aligning to the barycentre") if counter else None
        weights["aligned"], _ = align_zoo(spec, stacked, reference=None, iters=cfg.align_iters, seed=cfg.seed,
                                          progress=report)
        result["alignment"]["seconds"] = time.perf_counter() - start
    for variant in track(variants, f"{zoo.path.name}: geometry", len(variants)):
        result["variants"][variant] = analyze_weights(spec, weights[variant], task_space, cfg)

    result["connectivity"] = _connectivity(zoo, family, records, task_space, stacked, cfg, align=skip is None, track=track)
    return result


def _connectivity(zoo, family, records, task_space: np.ndarray, stacked, cfg: AnalyzeConfig, align: bool,
                  track: Track) -> dict:
    task_ids = [r.task_id for r in records]
    pairs, pairing = sample_pairs(task_ids, [r.seed for r in records], task_space, k=cfg.pairs, seed=cfg.seed)
    data = _TestData(family, cfg.eval_examples)
    summary = zoo_connectivity(
        zoo.arch, stacked, pairs, lambda i, j: data.for_pair(task_ids[i], task_ids[j]), pairing,
        lambdas=lambda_grid(cfg.lambdas), align=align, seed=cfg.seed,
        track=lambda it, desc, total: track(it, f"{zoo.path.name}: barriers", total),
    )
    out = summary.to_dict()
    out["pair_tasks"] = [[task_ids[i], task_ids[j]] for i, j in pairs]
    out["data"] = ("each pair's own task's test set" if pairing == "same_task"
                   else "the two tasks' test sets concatenated") + f" (at most {cfg.eval_examples} examples per task)"
    return out


def _descriptor_names(family, width: int) -> list[str]:
    """The family's names for descriptor columns when it gives them, else d0, d1, ..."""
    names = getattr(family, "descriptor_names", None)
    if isinstance(names, (list, tuple)) and len(names) == width:
        return [str(n) for n in names]
    return [f"d{i}" for i in range(width)]
