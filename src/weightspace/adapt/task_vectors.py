"""Task vectors and the merges built from them, for any weight space (MLP, CNN, LoRA ΔW).

A task vector is a fine-tuned model minus its start, τ_i = θ_i − θ_0 (Ilharco et al. 2023).
Task arithmetic adds them, θ_0 + λ Σ_i τ_i. TIES-merging (Yadav et al. 2023) first trims each
vector to its largest entries, elects a sign per entry and averages only the entries that agree,
θ_0 + λ · ties(τ). Vectors are mappings of name -> tensor; λ is applied by the caller, which picks
it per task (here: by support-set loss).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import torch

from weightspace.errors import WeightspaceError

TIES_KEEP = 0.2  # fraction of each task vector's entries kept by the trim step (the paper's k = 20%)

Vector = Mapping[Hashable, torch.Tensor]


def task_arithmetic(vectors: Iterable[Vector]) -> dict:
    """Σ_i τ_i, entry by entry."""
    total: dict = {}
    for vec in vectors:
        for k, v in vec.items():
            total[k] = total[k] + v if k in total else v.clone()
    return total


def trim(vec: Vector, keep: float) -> dict:
    """TIES step 1: zero all but the ``keep`` fraction of largest-magnitude entries of one task
    vector, ranked over all its tensors together (entries tied with the cut-off are kept)."""
    flat = torch.cat([v.abs().flatten() for v in vec.values()])
    n_keep = max(1, round(keep * flat.numel()))
    cutoff = torch.topk(flat, n_keep).values[-1]
    return {k: torch.where((v.abs() >= cutoff) & (v != 0), v, torch.zeros_like(v)) for k, v in vec.items()}


def ties_merge(vectors: Sequence[Vector], keep: float = TIES_KEEP) -> dict:
    """TIES-merging before its λ: trim each task vector, elect per entry the sign of the trimmed
    sum (the sign with more total magnitude), and average only the entries agreeing with it
    (zeros never count). Two streaming passes over the members."""
    if not 0 < keep <= 1:
        raise WeightspaceError(f"TIES keeps a fraction in (0, 1] of each task vector, got {keep}.")
    sign = {k: torch.sign(v) for k, v in task_arithmetic(trim(vec, keep) for vec in vectors).items()}
    total = {k: torch.zeros_like(s) for k, s in sign.items()}
    count = {k: torch.zeros_like(s) for k, s in sign.items()}
    for vec in vectors:
        for k, v in trim(vec, keep).items():
            agrees = (torch.sign(v) == sign[k]) & (v != 0)
            total[k] += torch.where(agrees, v, torch.zeros_like(v))
            count[k] += agrees.to(v.dtype)
    return {k: total[k] / count[k].clamp_min(1) for k in total}
