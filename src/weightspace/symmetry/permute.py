"""Apply the symmetries a WeightSpec declares: permutations of hidden units and positive
rescaling of ReLU units. Both leave the network's function unchanged.

Conventions (shared by every module of ``weightspace.symmetry``):
- ``perms[g]`` is a LongTensor of shape ``(size,)``, or ``(M, size)`` for a stacked zoo with one
  permutation per member. New unit ``j`` is old unit ``perms[g][j]`` (gather semantics), so
  ``apply_permutation(params, spec, perms)[t].index_select(axis, ...)`` reads old units.
- ``scales[g]`` is a positive float tensor of the same shapes: a unit's "out" slices (its row
  of weights and its bias) are multiplied by its scale and its "in" slices (the column of the
  next layer) divided by it. ReLU(c z) = c ReLU(z) for c > 0 makes that a symmetry.
- Groups missing from ``perms`` / ``scales`` are left alone.
"""

from __future__ import annotations

from typing import Mapping

import torch

from weightspace.errors import WeightspaceError
from weightspace.spec import PermGroup, WeightSpec

Params = Mapping[str, torch.Tensor]


def identity_permutation(spec: WeightSpec, members: int | None = None) -> dict[str, torch.Tensor]:
    """The permutation that changes nothing (per member when ``members`` is given)."""
    out = {}
    for g in spec.groups:
        p = torch.arange(g.size)
        out[g.name] = p if members is None else p.expand(members, g.size).clone()
    return out


def random_permutation(spec: WeightSpec, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A uniformly random symmetry permutation per group; GroupNorm blocks stay together."""
    return {g.name: _random_group_permutation(g, generator) for g in spec.groups}


def _random_group_permutation(g: PermGroup, generator: torch.Generator) -> torch.Tensor:
    if g.blocks == 1:
        return torch.randperm(g.size, generator=generator)
    width = g.size // g.blocks
    block_order = torch.randperm(g.blocks, generator=generator)
    inside = [torch.randperm(width, generator=generator) for _ in range(g.blocks)]
    return torch.cat([block_order[b] * width + inside[b] for b in range(g.blocks)])


def invert_permutation(perm: torch.Tensor) -> torch.Tensor:
    """The inverse along the last axis: ``p[inv] == arange`` (works per member)."""
    inv = torch.empty_like(perm)
    arange = torch.arange(perm.shape[-1]).expand_as(perm)
    return inv.scatter_(-1, perm, arange)


def compose_permutations(first: torch.Tensor, then: torch.Tensor) -> torch.Tensor:
    """The single permutation equal to applying ``first`` and then ``then``."""
    return torch.gather(first, -1, then)


def is_block_permutation(perm: torch.Tensor, blocks: int) -> bool:
    """True when every block of ``blocks`` contiguous units maps onto one whole block."""
    size = perm.shape[-1]
    width = size // blocks
    src_block = perm.reshape(*perm.shape[:-1], blocks, width) // width
    return bool((src_block == src_block[..., :1]).all())


def take_units(x: torch.Tensor, index: torch.Tensor, axis: int, stacked: bool) -> torch.Tensor:
    """``x`` with ``axis`` (an axis of the member's own shape) re-indexed by ``index``.

    ``index`` is ``(size,)`` (same for every member) or, when stacked, ``(M, size)``.
    """
    if not stacked:
        return x.index_select(axis, index)
    axis += 1
    if index.dim() == 1:
        return x.index_select(axis, index)
    # Advanced indexing copies whole contiguous slices; take_along_dim would gather elementwise
    # through a full-size index tensor and is several times slower.
    members = torch.arange(x.shape[0]).unsqueeze(1)
    return x.movedim(axis, 1)[members, index].movedim(1, axis)


def _check_perm(g: PermGroup, perm: torch.Tensor, stacked: bool, members: int | None) -> None:
    if perm.dtype != torch.long or perm.shape[-1] != g.size or perm.dim() not in ((1, 2) if stacked else (1,)):
        raise WeightspaceError(
            f"permutation for group {g.name} has shape {tuple(perm.shape)} and dtype {perm.dtype}; "
            f"expected int64 of shape ({g.size},)" + (f" or (members, {g.size})." if stacked else ".")
        )
    if perm.dim() == 2 and members is not None and perm.shape[0] != members:
        raise WeightspaceError(f"permutation for group {g.name} covers {perm.shape[0]} members, the weights stack {members}.")


def apply_permutation(params: Params, spec: WeightSpec, perms: Mapping[str, torch.Tensor],
                      stacked: bool = False) -> dict[str, torch.Tensor]:
    """Permute hidden units of one member (or of every member of a stack): same function."""
    m = params[spec.names[0]].shape[0] if stacked else None
    out = dict(params)
    for g in spec.groups:
        if g.name not in perms:
            continue
        perm = perms[g.name]
        _check_perm(g, perm, stacked, m)
        for ax in g.axes:
            out[ax.tensor] = take_units(out[ax.tensor], perm, ax.axis, stacked)
    return out


def random_scaling(spec: WeightSpec, generator: torch.Generator, low: float = 0.25,
                   high: float = 4.0) -> dict[str, torch.Tensor]:
    """Log-uniform positive scales in [low, high] for every scale-invariant (ReLU) group."""
    if not 0 < low <= high:
        raise WeightspaceError(f"scaling range must satisfy 0 < low <= high, got low={low}, high={high}.")
    lo, hi = torch.log(torch.tensor(low)), torch.log(torch.tensor(high))
    return {
        g.name: torch.exp(lo + (hi - lo) * torch.rand(g.size, generator=generator))
        for g in spec.groups if g.scale_invariant
    }


def _broadcast_scale(scale: torch.Tensor, x: torch.Tensor, axis: int, stacked: bool) -> torch.Tensor:
    """Shape ``scale`` so it multiplies ``x`` along ``axis`` (member axis first when stacked)."""
    shape = [1] * x.dim()
    if stacked and scale.dim() == 2:
        shape[0] = scale.shape[0]
    shape[axis + (1 if stacked else 0)] = scale.shape[-1]
    return scale.reshape(shape).to(x.dtype)


def apply_scaling(params: Params, spec: WeightSpec, scales: Mapping[str, torch.Tensor],
                  stacked: bool = False) -> dict[str, torch.Tensor]:
    """Multiply each unit's out slices by its scale and divide its in slices by it."""
    out = dict(params)
    for g in spec.groups:
        if g.name not in scales:
            continue
        if not g.scale_invariant:
            raise WeightspaceError(
                f"group {g.name} of the {spec.arch or 'given'} weight space is not scale invariant "
                "(its activation is not ReLU, or a norm layer follows it); drop it from the scales."
            )
        scale = scales[g.name]
        if scale.shape[-1] != g.size or not bool((scale > 0).all()):
            raise WeightspaceError(f"scales for group {g.name} must be {g.size} positive numbers per member.")
        for ax in g.axes:
            if ax.role == "norm":  # the spec defines rescaling on "out" and "in" slices only
                continue
            factor = _broadcast_scale(scale, out[ax.tensor], ax.axis, stacked)
            out[ax.tensor] = out[ax.tensor] * factor if ax.role == "out" else out[ax.tensor] / factor
    return out


def group_order(spec: WeightSpec) -> list[str]:
    """Group names from input to output: g comes before h when a tensor consumes g ("in")
    and produces h ("out"). Falls back to spec order for anything the edges leave open."""
    produced_by: dict[str, set[str]] = {}
    consumed_by: dict[str, set[str]] = {}
    for g in spec.groups:
        for ax in g.axes:
            (consumed_by if ax.role == "in" else produced_by).setdefault(ax.tensor, set()).add(g.name)
    before: dict[str, set[str]] = {g.name: set() for g in spec.groups}
    for tensor, consumers in consumed_by.items():
        for h in produced_by.get(tensor, ()):
            before[h] |= consumers - {h}
    order, done = [], set()
    while len(order) < len(spec.groups):
        ready = [g.name for g in spec.groups if g.name not in done and before[g.name] <= done]
        if not ready:  # a cycle cannot happen in a feed-forward spec; keep spec order if it does
            ready = [g.name for g in spec.groups if g.name not in done]
        order.append(ready[0])
        done.add(ready[0])
    return order
