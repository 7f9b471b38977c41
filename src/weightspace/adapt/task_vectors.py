"""Task vectors and the merges built from them, for any weight space (MLP, CNN, LoRA ΔW).

A task vector is a fine-tuned model minus its start, τ_i = θ_i − θ_0 (Ilharco et al. 2023).
Task arithmetic adds them, θ_0 + λ Σ_i τ_i. TIES-merging (Yadav et al. 2023) first trims each
vector to its largest entries, elects a sign per entry and averages only the entries that agree,
θ_0 + λ · ties(τ). Vectors are mappings of name -> tensor; λ is applied by the caller, which picks
it per task (evaluate/merged.py: by support-set loss).

``TaskVectors`` reads them off a stacked zoo of any architecture: a tensor's τ is its change from
the shared start, and a low-rank pair's (``arch.low_rank_pairs()``, LoRA's A and B) is its update
ΔW = scale · B A, since such members all start at ΔW = 0 (PEFT's B = 0). ``MergedWeights`` turns a
merged vector back into weights: a merge of several rank-r updates has higher rank, so it is
brought back into the rank-r space by truncated SVD (the best rank-r approximation, Eckart-Young).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence

import torch

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture
from weightspace.symmetry.canonical import lora_canonical

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


class TaskVectors(Sequence):
    """Member i's task vector, computed on access so a large zoo is never held twice in memory
    (merges stream over members). Keys: tensor names, and (a, b) for each low-rank pair (float64
    ΔW). ``skip`` leaves tensors out (a head refitted per task); ``start`` is the members' shared
    start, needed when any tensor outside the low-rank pairs is merged."""

    def __init__(self, arch: Architecture, stacked: Mapping[str, torch.Tensor],
                 start: Mapping[str, torch.Tensor] | None = None, skip: Sequence[str] = ()):
        self.pairs, self.stacked, self.start = arch.low_rank_pairs(), stacked, start
        self.plain = plain_tensors(arch, skip)
        if self.plain and start is None:
            raise WeightspaceError(f"task vectors of {', '.join(self.plain[:3])} need the members' shared start.")
        self.size = stacked[arch.spec().names[0]].shape[0]

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        out: dict = {(p.a, p.b): p.scale * (self.stacked[p.b][i].double() @ self.stacked[p.a][i].double())
                     for p in self.pairs}
        out.update({n: self.stacked[n][i] - self.start[n] for n in self.plain})
        return out


def plain_tensors(arch: Architecture, skip: Sequence[str] = ()) -> list[str]:
    """The spec's tensors outside every low-rank pair and outside ``skip``, in spec order."""
    paired = {n for p in arch.low_rank_pairs() for n in (p.a, p.b)}
    return [n for n in arch.spec().names if n not in paired and n not in skip]


def rank_r_factors(delta: torch.Tensor, rank: int, scaling: float) -> tuple[torch.Tensor, torch.Tensor]:
    """LoRA factors (A (r, d_in), B (d_out, r)) with scaling · B A = the best rank-r approximation
    of ``delta`` (truncated SVD), in the project's canonical gauge."""
    u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)
    root = (s[:rank] / scaling).sqrt()
    a, b = root[:, None] * vh[:rank], u[:, :rank] * root
    if a.shape[0] < rank:  # a module narrower than the rank: pad with zero components
        a = torch.cat([a, a.new_zeros(rank - a.shape[0], a.shape[1])])
        b = torch.cat([b, b.new_zeros(b.shape[0], rank - b.shape[1])], dim=1)
    a, b = lora_canonical(a, b)
    return a.float(), b.float()


class MergedWeights:
    """A merged task vector as weights at any scale λ: start + λ τ for plain tensors, and each
    low-rank pair's merged ΔW truncated to rank r once, its factors scaled by √λ (so ΔW by λ and
    the gauge stays balanced). Skipped tensors (a refitted head) are absent."""

    def __init__(self, arch: Architecture, merged: Mapping, start: Mapping[str, torch.Tensor] | None = None,
                 skip: Sequence[str] = ()):
        shapes = arch.spec().shapes
        self.factors = {}
        for p in arch.low_rank_pairs():
            self.factors[p.a], self.factors[p.b] = rank_r_factors(merged[(p.a, p.b)], shapes[p.a][0], p.scale)
        self.plain = plain_tensors(arch, skip)
        self.merged, self.start = merged, start

    def at(self, lam: float) -> dict[str, torch.Tensor]:
        out = {k: v * math.sqrt(lam) for k, v in self.factors.items()}
        out.update({n: self.start[n] + lam * self.merged[n] for n in self.plain})
        return out
