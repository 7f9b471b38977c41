"""Task arithmetic and TIES-merging of a shared-start zoo's members, as baselines (kind
``merging``) for any architecture whose members share a frame.

The task vectors are τ_i = θ_i − θ_0 against the shared pretrained start (a zoo trained from
independent inits has no common start to subtract; its members' mean is what ``zoo-mean``
already reports). Both merges are computed once; per held-out task, λ is picked from a grid by
the support-set loss, which is all a user with that task's support set could do.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch

from weightspace.adapt.task_vectors import TIES_KEEP, task_arithmetic, ties_merge
from weightspace.evaluate.context import ZooContext
from weightspace.evaluate.methods import Method, Weights, shared_base
from weightspace.evaluate.predict import predict_members
from weightspace.spec import stack_members

# λ grids (as for LoRA zoos): arithmetic in units of 1/M, so 1 is the mean task vector; TIES at
# the scale of one task vector (the paper's λ ≈ 1).
ARITHMETIC_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
TIES_GRID = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def task_vector_methods(ctx: ZooContext, keep: float = TIES_KEEP) -> list[Method]:
    base = shared_base(ctx)
    if base is None or ctx.arch.features_dim is not None:  # no common start; LoRA zoos merge their own way
        return []
    m = len(ctx.records)
    vectors = [{n: ctx.params[n][i] - base[n] for n in ctx.spec.names} for i in range(m)]
    arithmetic = Method("task-arithmetic", "merging", "task arithmetic",
                        f"Ilharco et al. 2023: the shared start + λ · Σ τ_i over the {m} zoo task vectors, "
                        f"λ from {{{', '.join(f'{c:g}' for c in ARITHMETIC_GRID)}}}/M picked per task by support loss",
                        info={"members": m, "lambda": []})
    ties = Method("ties", "merging", f"TIES-merging (keep {keep:g})",
                  f"Yadav et al. 2023: each task vector trimmed to its top {keep:.0%} entries, signs elected, agreeing "
                  "entries averaged, the shared start + λ · that; λ picked per task by support loss",
                  info={"members": m, "keep": keep, "lambda": []})
    for method, merge, grid in ((arithmetic, task_arithmetic, [c / m for c in ARITHMETIC_GRID]),
                                (ties, lambda v: ties_merge(v, keep), list(TIES_GRID))):
        began = time.perf_counter()
        merged = merge(vectors)
        method.setup_seconds = time.perf_counter() - began
        _add_per_task(ctx, method, base, merged, grid)
    return [arithmetic, ties]


def _add_per_task(ctx: ZooContext, method: Method, base: Weights, merged: Weights, grid: Sequence[float]) -> None:
    candidates = stack_members(({n: base[n] + lam * merged[n] for n in ctx.spec.names} for lam in grid), ctx.spec)
    for task in ctx.tasks:
        began = time.perf_counter()
        _, loss = predict_members(ctx.arch, candidates, task.support_x, task.support_y)
        best = int(loss.argmin())
        method.add({n: candidates[n][best].clone() for n in ctx.spec.names}, time.perf_counter() - began)
        method.info["lambda"].append(grid[best])
