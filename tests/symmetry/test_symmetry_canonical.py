"""Canonical forms: one representative per orbit of permutations, ReLU scales and LoRA gauges."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from symmetry_helpers import architectures, assert_same_params, logits, probe_inputs, random_params

from weightspace.nets import MLP
from weightspace.spec import stack_members
from weightspace.symmetry.canonical import (
    canonical_order,
    canonicalize,
    lora_canonical,
    normalize_relu_scale,
    sorting_permutation,
    unit_keys,
)
from weightspace.symmetry.permute import apply_permutation, apply_scaling, random_permutation, random_scaling

FAST = settings(max_examples=30, deadline=None)


@FAST
@given(arch=architectures(), seed=st.integers(0, 10_000))
def test_canonicalize_is_invariant_to_permutations_and_keeps_the_function(arch, seed):
    spec = arch.spec()
    params = random_params(arch, seed)
    permuted = apply_permutation(params, spec, random_permutation(spec, torch.Generator().manual_seed(seed)))
    canon = canonicalize(params, spec)
    assert_same_params(canonicalize(permuted, spec), canon)
    x = probe_inputs(arch)
    assert (logits(arch, canon, x) - logits(arch, params, x)).abs().max() <= 1e-5


@FAST
@given(arch=architectures(relu_only=True), seed=st.integers(0, 10_000))
def test_canonicalize_is_invariant_to_relu_scaling(arch, seed):
    spec = arch.spec()
    params = random_params(arch, seed)
    gen = torch.Generator().manual_seed(seed)
    moved = apply_permutation(apply_scaling(params, spec, random_scaling(spec, gen)), spec, random_permutation(spec, gen))
    assert_same_params(canonicalize(moved, spec), canonicalize(params, spec))


def test_scale_normalisation_gives_unit_rows_and_same_function():
    arch = MLP((5,), 3, (7, 6))
    spec = arch.spec()
    params = random_params(arch, 0)
    norm = normalize_relu_scale(params, spec)
    for i in range(2):
        rows = torch.cat([norm[f"fc{i}.weight"], norm[f"fc{i}.bias"][:, None]], dim=1)
        torch.testing.assert_close(rows.norm(dim=1), torch.ones(rows.shape[0]))
    x = probe_inputs(arch)
    assert (logits(arch, norm, x) - logits(arch, params, x)).abs().max() <= 1e-5


def test_canonical_order_sorts_keys_and_stacks_agree():
    arch = MLP((5,), 3, (7, 6), activation="tanh")
    spec = arch.spec()
    members = [random_params(arch, i) for i in range(3)]
    stacked = canonical_order(stack_members(members, spec), spec, stacked=True)
    for i, m in enumerate(members):
        single = canonical_order(m, spec)
        for g in spec.groups:
            keys = unit_keys(single, g)
            assert torch.all(keys[1:] >= keys[:-1])
        assert all(torch.equal(single[n], stacked[n][i]) for n in spec.names)


def test_block_sorting_keeps_blocks_whole():
    keys = torch.tensor([5.0, 1.0, 0.5, 0.2, 3.0, 2.0])  # blocks of 2: sums 6, 0.7, 5
    assert sorting_permutation(keys, blocks=3).tolist() == [3, 2, 5, 4, 1, 0]


@settings(max_examples=30, deadline=None)
@given(r=st.integers(1, 4), rows=st.integers(1, 7), cols=st.integers(1, 7), seed=st.integers(0, 10_000))
def test_lora_gauge_fix(r, rows, cols, seed):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(2, r, cols, generator=gen, dtype=torch.float64)
    b = torch.randn(2, rows, r, generator=gen, dtype=torch.float64)
    g = torch.randn(2, r, r, generator=gen, dtype=torch.float64) + 3 * torch.eye(r, dtype=torch.float64)
    a1, b1 = lora_canonical(a, b)
    a2, b2 = lora_canonical(g @ a, b @ torch.linalg.inv(g))
    assert a1.shape == a.shape and b1.shape == b.shape
    torch.testing.assert_close(b1 @ a1, b @ a)
    torch.testing.assert_close(a2, a1, atol=1e-8, rtol=1e-7)
    torch.testing.assert_close(b2, b1, atol=1e-8, rtol=1e-7)
