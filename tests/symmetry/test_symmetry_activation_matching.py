"""Activation matching pairs units by the correlation of their outputs."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from symmetry_helpers import architectures, probe_inputs, random_params

from weightspace.errors import WeightspaceError
from weightspace.nets import MLP
from weightspace.spec import stack_members
from weightspace.symmetry.activation_matching import activation_correlations, activation_matching
from weightspace.symmetry.align_zoo import align_zoo
from weightspace.symmetry.permute import apply_permutation, random_permutation


@settings(max_examples=20, deadline=None)
@given(arch=architectures(), seed=st.integers(0, 10_000))
def test_activation_matching_recovers_a_hidden_permutation(arch, seed):
    spec = arch.spec()
    params = random_params(arch, seed)
    perms = random_permutation(spec, torch.Generator().manual_seed(seed))
    permuted = apply_permutation(params, spec, perms)
    x = probe_inputs(arch, n=64, seed=seed)
    corr = activation_correlations(arch, params, permuted, x, batch=16)  # chunked statistics
    found = activation_matching(arch, params, permuted, x)
    for g in spec.groups:
        assert torch.all(corr[g.name] <= 1 + 1e-9)
        matched = corr[g.name][torch.arange(g.size), found[g.name]]
        # Each unit is paired with its own copy (correlation 1), unless it is dead on x.
        alive = corr[g.name].abs().amax(dim=1) > 0
        assert torch.allclose(matched[alive], torch.ones_like(matched[alive]), atol=1e-6)


def test_activation_matching_aligns_a_permuted_mlp_exactly():
    arch = MLP((6,), 3, (16, 8), activation="tanh")
    spec = arch.spec()
    params = random_params(arch, 3)
    permuted = apply_permutation(params, spec, random_permutation(spec, torch.Generator().manual_seed(4)))
    found = activation_matching(arch, params, permuted, probe_inputs(arch, 200))
    aligned = apply_permutation(permuted, spec, found)
    assert all(torch.equal(aligned[n], params[n]) for n in spec.names)


def test_align_zoo_by_activations():
    arch = MLP((6,), 3, (10,), activation="tanh")
    spec = arch.spec()
    base = random_params(arch, 0)
    copies = [apply_permutation(base, spec, random_permutation(spec, torch.Generator().manual_seed(i))) for i in range(3)]
    aligned, _ = align_zoo(spec, stack_members(copies, spec), reference=base, method="activation",
                           arch=arch, x=probe_inputs(arch, 100))
    assert torch.equal(aligned["fc0.weight"], base["fc0.weight"].expand(3, -1, -1))


def test_wrong_probe_shape_is_refused():
    arch = MLP((6,), 3, (4,))
    params = arch.init_params(0)
    with pytest.raises(WeightspaceError, match="inputs have shape"):
        activation_matching(arch, params, params, torch.zeros(5, 7))
