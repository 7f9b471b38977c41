import numpy as np
import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.geometry.spectrum import centred_matrix, components_for, pca_spectrum, principal_scores
from weightspace.nets import MLP
from weightspace.spec import stack_members

SPEC = MLP(input_shape=(6,), n_classes=3, hidden=(5,)).spec()


def zoo_on_subspace(k: int, m: int = 40, seed: int = 0, noise: float = 0.0) -> dict[str, torch.Tensor]:
    """m members = a centre plus random combinations of k fixed directions (plus optional noise)."""
    g = torch.Generator().manual_seed(seed)
    d = SPEC.numel
    centre = torch.randn(d, generator=g)
    basis = torch.randn(k, d, generator=g)
    flat = centre + torch.randn(m, k, generator=g) @ basis + noise * torch.randn(m, d, generator=g)
    return SPEC.unflatten(flat)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_zoo_on_k_dim_subspace_needs_at_most_k_components(k):
    s = pca_spectrum(SPEC, zoo_on_subspace(k))
    assert s.dims(0.99) <= k
    assert s.dims(0.90) <= k
    # everything beyond k components is rounding noise
    assert s.explained[k:].sum() < 1e-10


def test_explained_ratios_match_covariance_eigenvalues():
    stacked = zoo_on_subspace(4, noise=0.3)
    x = SPEC.flatten_stacked(stacked).double().numpy()
    eig = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    s = pca_spectrum(SPEC, stacked)
    m = x.shape[0]
    np.testing.assert_allclose(s.variances, eig[: len(s.variances)], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s.explained, eig[:m] / eig.sum(), rtol=1e-6, atol=1e-9)
    assert s.n_members == m and s.n_params == SPEC.numel


def test_noisy_zoo_needs_more_components_than_clean_one():
    clean = pca_spectrum(SPEC, zoo_on_subspace(3))
    noisy = pca_spectrum(SPEC, zoo_on_subspace(3, noise=2.0))
    assert noisy.dims(0.99) > clean.dims(0.99)


def test_per_tensor_normalisation_removes_scale_dominance():
    # fc0.weight and fc1.weight vary along one direction each, independently; fc0.weight is 1000x larger.
    g = torch.Generator().manual_seed(1)
    m = 30
    members = []
    for _ in range(m):
        p = {n: torch.zeros(s) for n, s in SPEC.shapes.items()}
        p["fc0.weight"] = 1000.0 * torch.randn(1, generator=g) * torch.ones(SPEC.shapes["fc0.weight"])
        p["fc1.weight"] = torch.randn(1, generator=g) * torch.ones(SPEC.shapes["fc1.weight"])
        members.append(p)
    stacked = stack_members(members, SPEC)
    assert pca_spectrum(SPEC, stacked, "raw").dims(0.99) == 1
    assert pca_spectrum(SPEC, stacked, "per_tensor").dims(0.99) == 2


def test_components_for_thresholds():
    explained = np.array([0.5, 0.4, 0.1])
    assert components_for(explained, 0.5) == 1
    assert components_for(explained, 0.9) == 2
    assert components_for(explained, 0.99) == 3
    assert components_for(np.zeros(3), 0.9) == 0
    with pytest.raises(WeightspaceError):
        components_for(explained, 1.5)


def test_identical_members_have_no_dimensions():
    stacked = {n: t.unsqueeze(0).repeat(5, *[1] * t.ndim) for n, t in SPEC.unflatten(torch.randn(SPEC.numel)).items()}
    s = pca_spectrum(SPEC, stacked)
    assert s.dims(0.9) == 0 and s.total_variance == pytest.approx(0.0, abs=1e-20)


def test_spectrum_errors():
    one = zoo_on_subspace(2, m=1)
    with pytest.raises(WeightspaceError, match="at least 2 members"):
        pca_spectrum(SPEC, one)
    with pytest.raises(WeightspaceError, match="normalisation"):
        centred_matrix(SPEC, zoo_on_subspace(2), "zscore")


def test_principal_scores_reproduce_distances_and_are_sign_fixed():
    x = centred_matrix(SPEC, zoo_on_subspace(2, noise=0.0))
    scores, ratio = principal_scores(x, 2)
    # two components hold the whole zoo, so distances between members are preserved exactly
    np.testing.assert_allclose(torch.cdist(x, x).numpy(), torch.cdist(torch.tensor(scores), torch.tensor(scores)).numpy(),
                               atol=1e-5)
    assert ratio.sum() == pytest.approx(1.0)
    # reordering the members reorders their coordinates and never flips an axis
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    again, _ = principal_scores(x[order], 2)
    np.testing.assert_allclose(again, scores[order.numpy()], atol=1e-8)
