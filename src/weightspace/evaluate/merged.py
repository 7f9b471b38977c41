"""Task arithmetic and TIES-merging of a zoo's members, as baselines (kind ``merging``), for every
architecture (the maths: adapt/task_vectors.py).

The task vectors are τ_i = θ_i − θ_0 against the shared pretrained start, and ΔW for low-rank
pairs (LoRA), whose members all start at ΔW = 0. A zoo trained from independent inits has no
common start to subtract (its members' mean is what ``zoo-mean`` already reports), so tensors
outside the low-rank pairs can be merged only in a shared-start zoo. Both merges are computed
once (``setup_seconds``); per held-out task, λ is picked from a grid by the support-set loss,
which is all a user with that task's support set could do. For an architecture whose head is
refitted per task (``arch.head_refit``) the head is not merged: each candidate gets a head fitted
on the support set (adapt.head_refit), and λ is picked by that head's support loss.
"""

from __future__ import annotations

import time
from typing import Sequence

from weightspace.adapt.head_refit import refit_head
from weightspace.adapt.multitask import head_names
from weightspace.adapt.task_vectors import TIES_KEEP, MergedWeights, TaskVectors, plain_tensors, task_arithmetic, ties_merge
from weightspace.evaluate.baseline_registry import register_baseline
from weightspace.evaluate.context import ZooContext
from weightspace.evaluate.methods import Method, Retrieved, has_shared_start, shared_base
from weightspace.nets.predict import predict_members
from weightspace.spec import stack_members

# λ grids, wide enough that the support-loss minimum fell inside them on a 24-member chatterbot zoo
# (small λ tends to the start, i.e. the frozen model's probe for LoRA; large λ distorts it).
ARITHMETIC_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # λ x M: 1 is the mean task vector
TIES_GRID = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # the TIES vector has one task vector's scale (paper: λ≈1)


def has_task_vectors(ctx: ZooContext) -> bool:
    """A start to take task vectors from: the shared start, or none needed where the whole body is
    low-rank pairs (ΔW starts at 0). An architecture with a refitted head reports its merges with
    its feature baselines instead (feature_baselines.py), where they have always been listed."""
    return not ctx.arch.head_refit and (not plain_tensors(ctx.arch, ()) or has_shared_start(ctx))


@register_baseline("merging", pretty="task arithmetic and TIES-merging",
                   paper="task arithmetic (Ilharco et al. 2023, editing models with task arithmetic); TIES-merging "
                         "(Yadav et al. 2023)",
                   applies=has_task_vectors, position=50)
def merging_baselines(ctx: ZooContext, ranked: Retrieved, cfg) -> list[Method]:
    return merge_methods(ctx)


def task_vector_methods(ctx: ZooContext, keep: float = TIES_KEEP) -> list[Method]:
    """The merges of a zoo with task vectors, [] where ``has_task_vectors`` says it has none."""
    return merge_methods(ctx, keep) if has_task_vectors(ctx) else []


def merge_methods(ctx: ZooContext, keep: float = TIES_KEEP) -> list[Method]:
    """[task-arithmetic, ties], or [] when the zoo has no start to take task vectors from."""
    skip = head_names(ctx.arch) if ctx.arch.head_refit else ()
    start = shared_base(ctx) if plain_tensors(ctx.arch, skip) else None
    if start is None and plain_tensors(ctx.arch, skip):
        return []
    vectors = TaskVectors(ctx.arch, ctx.params, start, skip)
    m = len(ctx.records)
    (arithmetic, ties) = _methods(ctx, m, keep)
    for method, merge, grid in ((arithmetic, task_arithmetic, [c / m for c in ARITHMETIC_GRID]),
                                (ties, lambda v: ties_merge(v, keep), list(TIES_GRID))):
        began = time.perf_counter()
        merged = MergedWeights(ctx.arch, merge(vectors), start, skip)
        method.setup_seconds = time.perf_counter() - began
        _pick_by_support_loss(ctx, method, merged, grid)
    return [arithmetic, ties]


def _methods(ctx: ZooContext, m: int, keep: float) -> tuple[Method, Method]:
    """The two methods, described for what they merge (low-rank ΔW or whole networks)."""
    if not ctx.arch.low_rank_pairs():
        arithmetic = Method("task-arithmetic", "merging", "task arithmetic",
                            f"Ilharco et al. 2023: the shared start + λ · Σ τ_i over the {m} zoo task vectors, "
                            f"λ from {{{', '.join(f'{c:g}' for c in ARITHMETIC_GRID)}}}/M picked per task by support loss",
                            info={"members": m, "lambda": []})
        ties = Method("ties", "merging", f"TIES-merging (keep {keep:g})",
                      f"Yadav et al. 2023: each task vector trimmed to its top {keep:.0%} entries, signs elected, agreeing "
                      "entries averaged, the shared start + λ · that; λ picked per task by support loss",
                      info={"members": m, "keep": keep, "lambda": []})
        return arithmetic, ties
    rank = ctx.arch.spec().shapes[ctx.arch.low_rank_pairs()[0].a][0]
    picked = ("support-set loss of a logistic-regression head fitted on the support embeddings under the merged adapter"
              if ctx.arch.head_refit else "support-set loss")
    arithmetic = Method(
        "task-arithmetic", "merging", "task arithmetic (rank-r SVD)",
        f"Ilharco et al. 2023: λ · Σ ΔW_i over the {m} zoo task vectors, truncated back to rank {rank} by SVD "
        f"(the sum has higher rank); λ from {{{', '.join(f'{c:g}' for c in ARITHMETIC_GRID)}}}/M picked per task by the "
        f"{picked}", info={"members": m, "lambda_grid": [c / m for c in ARITHMETIC_GRID], "lambda": [], "rank": rank})
    ties = Method(
        "ties", "merging", f"TIES-merging (top {keep:.0%}, rank-r SVD)",
        f"Yadav et al. 2023: each of the {m} zoo task vectors trimmed to its top {keep:.0%} magnitudes, a sign elected "
        "per entry by summed magnitude, the agreeing entries averaged (disjoint mean), scaled by λ; truncated back to "
        f"rank {rank} by SVD; λ from {{{', '.join(f'{c:g}' for c in TIES_GRID)}}} picked per task by the {picked}",
        info={"members": m, "keep": keep, "lambda_grid": list(TIES_GRID), "lambda": [], "rank": rank})
    return arithmetic, ties


def _pick_by_support_loss(ctx: ZooContext, method: Method, merged: MergedWeights, grid: Sequence[float]) -> None:
    """Per task, the λ whose merge has the lowest support-set loss: of the merged weights as they
    are, or (``head_refit``) of a head fitted on the support set under them."""
    candidates = None if ctx.arch.head_refit else stack_members((merged.at(lam) for lam in grid), ctx.spec)
    for task in ctx.tasks:
        began = time.perf_counter()
        if candidates is None:
            weights, _, lam = min(((*refit_head(ctx.arch, merged.at(lam), task.support_x, task.support_y), lam)
                                   for lam in grid), key=lambda found: found[1])
        else:
            best = int(predict_members(ctx.arch, candidates, task.support_x, task.support_y)[1].argmin())
            weights, lam = {n: candidates[n][best].clone() for n in ctx.spec.names}, grid[best]
        method.add(weights, time.perf_counter() - began)
        method.info["lambda"].append(lam)
