"""Permutations and ReLU rescaling leave every supported network's function unchanged."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from symmetry_helpers import architectures, logits, probe_inputs, random_params

from weightspace.errors import WeightspaceError
from weightspace.nets import CNN, MLP
from weightspace.spec import stack_members
from weightspace.symmetry.permute import (
    apply_permutation,
    apply_scaling,
    compose_permutations,
    group_order,
    invert_permutation,
    is_block_permutation,
    random_permutation,
    random_scaling,
)

FAST = settings(max_examples=30, deadline=None)


@FAST
@given(arch=architectures(), seed=st.integers(0, 10_000))
def test_permutation_preserves_function(arch, seed):
    spec = arch.spec()
    params = random_params(arch, seed)
    perms = random_permutation(spec, torch.Generator().manual_seed(seed))
    x = probe_inputs(arch)
    permuted = apply_permutation(params, spec, perms)
    assert (logits(arch, permuted, x) - logits(arch, params, x)).abs().max() <= 1e-5
    for g in spec.groups:
        assert sorted(perms[g.name].tolist()) == list(range(g.size))
        assert is_block_permutation(perms[g.name], g.blocks)


@FAST
@given(arch=architectures(relu_only=True), seed=st.integers(0, 10_000))
def test_relu_scaling_preserves_function(arch, seed):
    spec = arch.spec()
    params = random_params(arch, seed)
    scales = random_scaling(spec, torch.Generator().manual_seed(seed))
    assert set(scales) == {g.name for g in spec.groups if g.scale_invariant}
    x = probe_inputs(arch)
    scaled = apply_scaling(params, spec, scales)
    assert (logits(arch, scaled, x) - logits(arch, params, x)).abs().max() <= 1e-5


@FAST
@given(arch=architectures(), seed=st.integers(0, 10_000))
def test_stacked_per_member_permutations_match_single_members(arch, seed):
    spec = arch.spec()
    members = [random_params(arch, seed + i) for i in range(3)]
    perms = [random_permutation(spec, torch.Generator().manual_seed(seed + 10 + i)) for i in range(3)]
    stacked = stack_members(members, spec)
    stacked_perms = {g.name: torch.stack([p[g.name] for p in perms]) for g in spec.groups}
    out = apply_permutation(stacked, spec, stacked_perms, stacked=True)
    for i in range(3):
        single = apply_permutation(members[i], spec, perms[i])
        for name in spec.names:
            assert torch.equal(out[name][i], single[name])


def test_inverse_and_composition():
    arch = MLP((5,), 3, (6, 4))
    spec = arch.spec()
    params = arch.init_params(0)
    p = random_permutation(spec, torch.Generator().manual_seed(1))
    q = random_permutation(spec, torch.Generator().manual_seed(2))
    back = apply_permutation(apply_permutation(params, spec, p), spec, {g: invert_permutation(v) for g, v in p.items()})
    assert all(torch.equal(back[n], params[n]) for n in spec.names)
    twice = apply_permutation(apply_permutation(params, spec, p), spec, q)
    once = apply_permutation(params, spec, {g: compose_permutations(p[g], q[g]) for g in p})
    assert all(torch.equal(twice[n], once[n]) for n in spec.names)


def test_groupnorm_block_structure_is_detected():
    assert is_block_permutation(torch.tensor([2, 3, 1, 0]), 2)
    assert not is_block_permutation(torch.tensor([0, 2, 1, 3]), 2)


def test_group_order_runs_input_to_output():
    spec = CNN((1, 6, 6), 2, (4, 4, 4)).spec()
    assert group_order(spec) == ["c0", "c1", "c2"]


def test_bad_permutation_and_scaling_are_refused():
    arch = MLP((4,), 2, (3,), activation="tanh")
    spec = arch.spec()
    params = arch.init_params(0)
    with pytest.raises(WeightspaceError, match="group h0"):
        apply_permutation(params, spec, {"h0": torch.tensor([0, 1])})
    with pytest.raises(WeightspaceError, match="not scale invariant"):
        apply_scaling(params, spec, {"h0": torch.ones(3)})
    relu = MLP((4,), 2, (3,)).spec()
    with pytest.raises(WeightspaceError, match="positive"):
        apply_scaling(params, relu, {"h0": torch.tensor([1.0, -1.0, 1.0])})
