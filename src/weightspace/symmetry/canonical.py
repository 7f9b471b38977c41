"""Canonical forms: one representative per symmetry orbit, computed without any reference.

- ReLU scale: every scale-invariant unit's out slices (its weight row and bias) get unit norm;
  the inverse factor moves into the next layer's columns. Groups are processed from input to
  output so a layer's norm is measured after the previous layer pushed its scales forward.
- Order: units are sorted by a per-unit key. "norm" is the norm of the unit's out and norm
  slices; it is constant after scale normalisation, so ``canonicalize`` sorts by "projection",
  the unit's out/norm slices projected on a fixed pseudo-random direction. Groups are sorted
  from input to output, so a unit's weight row is read with its inputs already in canonical
  order. GroupNorm blocks stay whole: units sort inside each block, blocks sort by their summed key.
- LoRA gauge: B A is unchanged by A -> G A, B -> B G^-1 for any invertible G; the canonical
  factors come from the SVD of B A: B' = U sqrt(S), A' = sqrt(S) V^T, each singular pair's sign
  fixed so that the largest-magnitude entry of U's column is positive. ``canonical_frame``
  applies it to every pair an architecture declares (``Architecture.low_rank_pairs``).

For generic weights the result is exact: canonicalize(P theta) == canonicalize(theta) and
canonicalize(scaled theta) == canonicalize(theta) up to float rounding. Keys that tie (duplicate
units, repeated singular values) leave the order among the tied units undetermined.
"""

from __future__ import annotations

from typing import Mapping

import torch

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture
from weightspace.spec import PermGroup, WeightSpec
from weightspace.symmetry.permute import apply_permutation, apply_scaling, group_order

KEYS = ("norm", "projection")
_DIRECTION_SEED = 20240607  # fixed: the projection key must be the same in every process


def _unit_slices(params, g: PermGroup, stacked: bool) -> torch.Tensor:
    """Each unit's out and norm slices concatenated: (size, features) or (M, size, features)."""
    lead = 1 if stacked else 0
    parts = []
    for ax in g.axes:
        if ax.role == "in":
            continue
        t = params[ax.tensor]
        parts.append(t.movedim(ax.axis + lead, lead).reshape(*t.shape[:lead], g.size, -1))
    return torch.cat(parts, dim=-1)


def normalize_relu_scale(params: Mapping[str, torch.Tensor], spec: WeightSpec, stacked: bool = False) -> dict:
    """Unit-norm out slices for every scale-invariant unit; same function (dead units left alone)."""
    out = dict(params)
    for name in group_order(spec):
        g = spec.group(name)
        if not g.scale_invariant:
            continue
        norm = _unit_slices(out, g, stacked).norm(dim=-1)
        scale = torch.where(norm > 0, 1.0 / norm.clamp_min(torch.finfo(norm.dtype).tiny), torch.ones_like(norm))
        out = apply_scaling(out, spec, {name: scale}, stacked=stacked)
    return out


def _direction(features: int, name: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(_DIRECTION_SEED + sum(map(ord, name)))
    return torch.randn(features, generator=gen, dtype=torch.float64)


def unit_keys(params: Mapping[str, torch.Tensor], g: PermGroup, stacked: bool = False, key: str = "norm") -> torch.Tensor:
    """One sortable number per unit: (size,) or (M, size)."""
    slices = _unit_slices(params, g, stacked).double()
    if key == "norm":
        return slices.norm(dim=-1)
    if key == "projection":
        return slices @ _direction(slices.shape[-1], g.name)
    raise WeightspaceError(f"unknown canonical ordering key {key!r}; choose one of {', '.join(KEYS)}.")


def sorting_permutation(keys: torch.Tensor, blocks: int = 1) -> torch.Tensor:
    """The permutation listing units by ascending key, blocks kept whole (works per member)."""
    if blocks == 1:
        return torch.argsort(keys, dim=-1, stable=True)
    size = keys.shape[-1]
    width = size // blocks
    tiles = keys.reshape(*keys.shape[:-1], blocks, width)
    inner = torch.argsort(tiles, dim=-1, stable=True)  # within-block order, (.., blocks, width)
    block_order = torch.argsort(tiles.sum(-1), dim=-1, stable=True)  # (.., blocks)
    starts = block_order.unsqueeze(-1) * width
    inner_of_chosen = torch.take_along_dim(inner, block_order.unsqueeze(-1), dim=-2)
    return (starts + inner_of_chosen).reshape(*keys.shape[:-1], size)


def canonical_order(params: Mapping[str, torch.Tensor], spec: WeightSpec, stacked: bool = False, key: str = "norm") -> dict:
    """Units of every group sorted (per member) by ``key``, input to output."""
    out = dict(params)
    for name in group_order(spec):
        g = spec.group(name)
        perm = sorting_permutation(unit_keys(out, g, stacked, key), g.blocks)
        out = apply_permutation(out, spec, {name: perm}, stacked=stacked)
    return out


def canonicalize(params: Mapping[str, torch.Tensor], spec: WeightSpec, stacked: bool = False) -> dict:
    """Scale-normalise ReLU units, then sort units by their projection key."""
    spec.validate(params, stacked=stacked, where="weights to canonicalize")
    return canonical_order(normalize_relu_scale(params, spec, stacked), spec, stacked, key="projection")


def lora_canonical(A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauge-fixed LoRA factors (A', B') with B' A' == B A; leading batch axes are allowed.

    A is (..., r, in), B is (..., out, r). Computed through QR of both factors so the SVD is of
    an r x r core, never of the full out x in product; in float64, returned in A's dtype.
    """
    if A.dim() < 2 or B.dim() < 2 or A.shape[-2] != B.shape[-1] or A.shape[:-2] != B.shape[:-2]:
        raise WeightspaceError(
            f"LoRA factors must be A (..., r, in) and B (..., out, r) with the same r; got A {tuple(A.shape)}, B {tuple(B.shape)}."
        )
    r = A.shape[-2]
    qb, rb = torch.linalg.qr(B.double())  # B = Qb Rb
    qa, ra = torch.linalg.qr(A.double().mT)  # A^T = Qa Ra
    u, s, vh = torch.linalg.svd(rb @ ra.mT, full_matrices=False)  # B A = Qb (Rb Ra^T) Qa^T
    k = s.shape[-1]
    # Singular values at rounding level are zeros whose vectors are arbitrary: drop them (the
    # usual numerical-rank cutoff), so rank-deficient products still have one canonical form.
    cutoff = s.amax(dim=-1, keepdim=True) * torch.finfo(s.dtype).eps * max(B.shape[-2], A.shape[-1])
    s = torch.where(s > cutoff, s, torch.zeros_like(s))
    left, right = qb @ u, qa @ vh.mT  # (..., out, k) and (..., in, k)
    pivot = left.abs().argmax(dim=-2, keepdim=True)
    sign = torch.sign(torch.take_along_dim(left, pivot, dim=-2))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    root = s.sqrt().unsqueeze(-2)
    b_new = left * sign * root
    a_new = (right * sign * root).mT
    if k < r:  # rank-deficient shapes (out or in smaller than r): pad with zero components
        b_new = torch.cat([b_new, b_new.new_zeros(*b_new.shape[:-1], r - k)], dim=-1)
        a_new = torch.cat([a_new, a_new.new_zeros(*a_new.shape[:-2], r - k, a_new.shape[-1])], dim=-2)
    return a_new.to(A.dtype), b_new.to(B.dtype)


def canonical_frame(arch: Architecture | None, stacked: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """Members in the closed-form frame their architecture declares, or None where it declares
    none (then a common frame has to be searched for: align_zoo). Every ``arch.low_rank_pairs()``
    pair is gauge-fixed by ``lora_canonical``, so equal products mean equal tensors."""
    pairs = arch.low_rank_pairs() if arch is not None else ()
    if not pairs:
        return None
    out = dict(stacked)
    for pair in pairs:
        out[pair.a], out[pair.b] = lora_canonical(stacked[pair.a], stacked[pair.b])
    return out
