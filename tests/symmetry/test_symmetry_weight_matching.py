"""Weight matching recovers hidden permutations, respects GroupNorm blocks, and aligns zoos."""

import itertools

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from symmetry_helpers import architectures, random_params

from weightspace.nets import CNN, MLP
from weightspace.spec import stack_members
from weightspace.symmetry.align_zoo import align_zoo
from weightspace.symmetry.permute import apply_permutation, identity_permutation, random_permutation
from weightspace.symmetry.weight_matching import match_weights, solve_assignment, weight_matching

FAST = settings(max_examples=25, deadline=None)


def _inner(spec, a, b):
    return sum(float((a[n].double() * b[n].double()).sum()) for n in spec.names)


@FAST
@given(arch=architectures(), seed=st.integers(0, 10_000))
def test_weight_matching_recovers_a_hidden_permutation(arch, seed):
    spec = arch.spec()
    params = random_params(arch, seed)
    perms = random_permutation(spec, torch.Generator().manual_seed(seed))
    permuted = apply_permutation(params, spec, perms)
    found = weight_matching(spec, params, permuted, seed=seed)
    aligned = apply_permutation(permuted, spec, found)
    for name in spec.names:
        assert torch.equal(aligned[name], params[name])
    # new unit j = old unit found[j]; permuted unit k is original unit perms[k]
    for g in spec.groups:
        assert torch.equal(perms[g.name][found[g.name]], torch.arange(g.size))


@settings(max_examples=40, deadline=None)
@given(blocks=st.sampled_from([2, 3]), width=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_block_assignment_is_the_best_block_preserving_permutation(blocks, width, seed):
    size = blocks * width
    s = np.random.default_rng(seed).standard_normal((size, size))
    best = -np.inf
    for block_perm in itertools.permutations(range(blocks)):
        for insides in itertools.product(itertools.permutations(range(width)), repeat=blocks):
            perm = np.concatenate([block_perm[b] * width + np.array(insides[b]) for b in range(blocks)])
            best = max(best, s[np.arange(size), perm].sum())
    found = solve_assignment(s, blocks)
    assert sorted(found) == list(range(size))
    assert np.isclose(s[np.arange(size), found].sum(), best)


def test_matching_independent_nets_reaches_a_local_optimum():
    arch = MLP((12,), 3, (10, 8))
    spec = arch.spec()
    ref, other = random_params(arch, 1), random_params(arch, 2)
    found = weight_matching(spec, ref, other)
    aligned = apply_permutation(other, spec, found)
    assert _inner(spec, ref, aligned) > _inner(spec, ref, other)
    # No single group's LAP can improve on the result (coordinate-ascent fixed point).
    again = match_weights(spec, ref, {n: v[None] for n, v in other.items()},
                          init={g: p[None] for g, p in found.items()}, seed=5)
    for g in spec.groups:
        assert torch.equal(again[g.name][0], found[g.name])


def test_match_weights_handles_per_member_references():
    arch = CNN((2, 6, 6), 3, (4, 6), groupnorm_groups=2)
    spec = arch.spec()
    refs = [random_params(arch, i) for i in range(3)]
    perms = [random_permutation(spec, torch.Generator().manual_seed(10 + i)) for i in range(3)]
    moved = stack_members([apply_permutation(r, spec, p) for r, p in zip(refs, perms)], spec)
    found = match_weights(spec, stack_members(refs, spec), moved, reference_stacked=True)
    aligned = apply_permutation(moved, spec, found, stacked=True)
    for name in spec.names:
        assert torch.equal(aligned[name], stack_members(refs, spec)[name])


@settings(max_examples=10, deadline=None)
@given(arch=architectures(), seed=st.integers(0, 10_000), barycentre=st.booleans())
def test_align_zoo_collapses_permuted_copies_to_one_point(arch, seed, barycentre):
    spec = arch.spec()
    base = random_params(arch, seed)
    copies = [apply_permutation(base, spec, random_permutation(spec, torch.Generator().manual_seed(seed + i)))
              for i in range(4)]
    stacked = stack_members(copies, spec)
    calls = []
    aligned, perms = align_zoo(spec, stacked, reference=None if barycentre else base, iters=2,
                               progress=lambda done, total: calls.append((done, total)))
    for name in spec.names:
        assert torch.allclose(aligned[name], aligned[name][:1].expand_as(aligned[name]), atol=1e-6)
        if not barycentre:
            assert torch.equal(aligned[name][0], base[name])
    assert torch.equal(apply_permutation(stacked, spec, perms, stacked=True)[spec.names[0]], aligned[spec.names[0]])
    assert calls and calls[-1][0] == calls[-1][1]


def test_align_zoo_barycentre_pulls_independent_members_together():
    arch = MLP((10,), 3, (12,))
    spec = arch.spec()
    stacked = stack_members([random_params(arch, i) for i in range(6)], spec)
    aligned, perms = align_zoo(spec, stacked, iters=3)

    def spread(z):
        flat = spec.flatten_stacked(z)
        return float(((flat - flat.mean(0)) ** 2).sum())

    assert spread(aligned) < spread(stacked)
    assert perms["h0"].shape == (6, 12)
    assert not torch.equal(perms["h0"], identity_permutation(spec, 6)["h0"])
