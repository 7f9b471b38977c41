"""Weight matching: permute one network's hidden units to sit as close as possible (in L2) to a
reference network, by coordinate ascent over permutation groups.

Algorithm (Ainsworth, Hayase & Srinivasa 2022, "Git Re-Basin", weight matching): maximising
sum_t <ref_t, P(params)_t> over one group's permutation, with every other group's permutation
held fixed, is a linear assignment problem whose similarity matrix sums, over all tensors that
touch the group ("out", "in" and "norm" axes), ref-slice x params-slice inner products. Solve it
for each group in random order; repeat until a sweep improves nothing.

Two choices beyond the paper, both to get the global optimum more often and faster:
- The first sweep goes from input to output and uses only the terms whose other groups are
  already matched in that sweep (the first layer's rows need nothing else). For an exact permuted
  copy this recovers the permutation in one sweep; for independent nets it is a better start
  than the identity. Later sweeps use every term, in random order.
- A term that depends only on groups whose permutations have not changed is reused, not
  recomputed (the first layer's term is computed once), and a group whose whole similarity is
  unchanged since its last solve is skipped: its LAP would return the same answer.

Everything is batched over members: ``match_weights`` takes ``(M, ...)`` stacks and solves one
small LAP per member per group; the similarity matrices come from one batched matmul per term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from weightspace.spec import WeightSpec
from weightspace.symmetry.permute import group_order, identity_permutation, take_units

# A sweep must raise a member's objective by this fraction to count as an improvement; below it
# float32 rounding of the similarity matrix could make two equal assignments look different.
RELATIVE_TOL = 1e-6


def solve_assignment(similarity: np.ndarray, blocks: int = 1) -> np.ndarray:
    """perm maximising sum_j similarity[j, perm[j]]; with blocks > 1 whole contiguous blocks of
    units map onto whole blocks (GroupNorm): an inner LAP per block pair, then a block-level LAP
    over the inner optima. That is the exact optimum over block-preserving permutations."""
    if blocks == 1:
        return linear_sum_assignment(similarity, maximize=True)[1]
    width = similarity.shape[0] // blocks
    tiles = similarity.reshape(blocks, width, blocks, width)
    rows = np.arange(width)
    block_score = np.empty((blocks, blocks))
    inner = {}
    for b in range(blocks):
        for c in range(blocks):
            cols = linear_sum_assignment(tiles[b, :, c, :], maximize=True)[1]
            inner[b, c] = cols
            block_score[b, c] = tiles[b, rows, c, cols].sum()
    block_of = linear_sum_assignment(block_score, maximize=True)[1]
    return np.concatenate([block_of[b] * width + inner[b, block_of[b]] for b in range(blocks)])


@dataclass(frozen=True)
class _Term:
    """One axis of one tensor that carries group ``group``; ``others`` are the (group, axis)
    pairs of every other group on the same tensor (their permutations are applied first)."""

    group: str
    tensor: str
    axis: int
    others: tuple[tuple[str, int], ...]


def _terms(spec: WeightSpec) -> dict[str, list[_Term]]:
    on_tensor: dict[str, list[tuple[str, int]]] = {}
    for g in spec.groups:
        for ax in g.axes:
            on_tensor.setdefault(ax.tensor, []).append((g.name, ax.axis))
    return {
        g.name: [
            _Term(g.name, ax.tensor, ax.axis, tuple((h, a) for h, a in on_tensor[ax.tensor] if h != g.name))
            for ax in g.axes
        ]
        for g in spec.groups
    }


class _Similarity:
    """Builds per-member similarity matrices for a group, reusing terms whose inputs are unchanged."""

    def __init__(self, spec, reference, params, ref_stacked: bool):
        self.spec, self.params, self.ref_stacked = spec, params, ref_stacked
        self.terms = _terms(spec)
        self.size = {g.name: g.size for g in spec.groups}
        self.version = {g.name: 0 for g in spec.groups}  # bumped when any member's perm changes
        self.cache: dict[_Term, tuple[tuple[int, ...], torch.Tensor]] = {}
        dtype = next(iter(params.values())).dtype
        # Reference slices flattened once: (size, rest) or, per member, (M, size, rest).
        lead = 1 if ref_stacked else 0
        self.ref_flat = {
            t: reference[t.tensor].to(dtype).movedim(t.axis + lead, lead).reshape(
                *reference[t.tensor].shape[:lead], self.size[t.group], -1)
            for ts in self.terms.values() for t in ts
        }

    def term(self, t: _Term, perms, active: torch.Tensor) -> torch.Tensor:
        """Similarity contribution of one term for the active members, (A, size, size)."""
        key = tuple(self.version[h] for h, _ in t.others)
        hit = self.cache.get(t)
        if hit is not None and hit[0] == key:
            return hit[1][active]
        p = self.params[t.tensor][active]
        for h, axis in t.others:
            p = take_units(p, perms[h][active], axis, stacked=True)
        p = p.movedim(t.axis + 1, 1).reshape(p.shape[0], self.size[t.group], -1)
        r = self.ref_flat[t][active] if self.ref_stacked else self.ref_flat[t]
        value = r @ p.transpose(1, 2)
        # Keep a full-width copy: members only ever leave the active set, so rows of members that
        # are no longer active are never read again.
        full = hit[1] if hit is not None else value.new_zeros(len(active), *value.shape[1:])
        full[active] = value
        self.cache[t] = (key, full)
        return value

    def inputs_key(self, g: str) -> tuple[int, ...]:
        """Versions of every other group that g's similarity depends on."""
        return tuple(self.version[h] for t in self.terms[g] for h, _ in t.others)

    def group(self, g: str, perms, active: torch.Tensor, matched: set[str] | None) -> torch.Tensor:
        total = None
        for t in self.terms[g]:
            if matched is not None and any(h not in matched for h, _ in t.others):
                continue  # first sweep: this term still depends on an unmatched group
            value = self.term(t, perms, active)
            total = value.clone() if total is None else total.add_(value)
        n = int(active.sum())
        return total if total is not None else torch.zeros(n, self.size[g], self.size[g])


def match_weights(spec: WeightSpec, reference: Mapping[str, torch.Tensor], params: Mapping[str, torch.Tensor],
                  *, reference_stacked: bool = False, init: Mapping[str, torch.Tensor] | None = None,
                  max_iter: int = 100, seed: int = 0) -> dict[str, torch.Tensor]:
    """Per-member permutations ``(M, size)`` aligning a stack ``params`` to ``reference``.

    ``reference`` is one network (shared by all members) or, with ``reference_stacked``, one per
    member. ``init`` warm-starts from given permutations (then the first sweep is a full one).
    """
    spec.validate(params, stacked=True, where="weights to align")
    spec.validate(reference, stacked=reference_stacked, where="reference weights")
    m = params[spec.names[0]].shape[0]
    perms = {g: p.clone() for g, p in init.items()} if init is not None else identity_permutation(spec, m)
    sim = _Similarity(spec, reference, params, reference_stacked)
    blocks = {g.name: g.blocks for g in spec.groups}
    rng = np.random.default_rng(seed)
    names = [g.name for g in spec.groups]
    active = torch.ones(m, dtype=torch.bool)
    solved_with: dict[str, tuple[int, ...] | None] = {}
    for sweep in range(max_iter + (init is None)):
        first = sweep == 0 and init is None
        order = group_order(spec) if first else [names[i] for i in rng.permutation(len(names))]
        improved = torch.zeros(m, dtype=torch.bool)
        matched: set[str] | None = set() if first else None
        for g in order:
            key = sim.inputs_key(g)
            if not first and solved_with.get(g) == key:
                continue  # same similarity as at g's last solve: the LAP would change nothing
            solved_with[g] = None if first else key
            scores = sim.group(g, perms, active, matched).double().numpy()
            members = torch.nonzero(active).flatten().tolist()
            changed = False
            for row, member in enumerate(members):
                s = scores[row]
                new = solve_assignment(s, blocks[g])
                old = perms[g][member].numpy()
                if np.array_equal(new, old):
                    continue
                if not first:  # later sweeps only take strict improvements, so they terminate
                    units = np.arange(len(new))
                    before = s[units, old].sum()
                    if s[units, new].sum() - before <= RELATIVE_TOL * abs(before):
                        continue
                perms[g][member] = torch.from_numpy(new)
                changed = True
                improved[member] = True
            if changed:
                sim.version[g] += 1
            if matched is not None:
                matched.add(g)
        if not first:
            active &= improved
            if not active.any():
                break
    return perms


def weight_matching(spec: WeightSpec, reference: Mapping[str, torch.Tensor], params: Mapping[str, torch.Tensor],
                    max_iter: int = 100, seed: int = 0) -> dict[str, torch.Tensor]:
    """Permutations such that ``apply_permutation(params, spec, perms)`` is close to ``reference``."""
    spec.validate(params, where="weights to align")
    stacked = {n: params[n].unsqueeze(0) for n in spec.names}
    perms = match_weights(spec, reference, stacked, max_iter=max_iter, seed=seed)
    return {g: p[0] for g, p in perms.items()}
