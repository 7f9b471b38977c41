import numpy as np
import pytest

from weightspace.errors import WeightspaceError
from weightspace.geometry.intrinsic_dim import intrinsic_dimension, levina_bickel, neighbour_distances, two_nn


def embed(z: np.ndarray, dim: int, rng) -> np.ndarray:
    """Points z (n, d) placed isometrically in R^dim by a random orthonormal frame, plus an offset."""
    q, _ = np.linalg.qr(rng.normal(size=(dim, z.shape[1])))
    return z @ q.T + rng.normal(size=dim)


@pytest.mark.parametrize("d", [2, 5])
def test_linear_subspace(d):
    rng = np.random.default_rng(d)
    x = embed(rng.uniform(size=(600, d)), 120, rng)
    est = intrinsic_dimension(x, k=10)
    assert est.two_nn == pytest.approx(d, rel=0.2)
    assert est.mle == pytest.approx(d, rel=0.2)
    assert est.n_points == 600 and est.mle_k == 10


@pytest.mark.parametrize("d", [2, 4])
def test_curved_manifold_sphere(d):
    # the unit d-sphere in R^(d+1), rotated into 80 dimensions: curved, intrinsic dimension d
    rng = np.random.default_rng(10 + d)
    g = rng.normal(size=(800, d + 1))
    x = embed(g / np.linalg.norm(g, axis=1, keepdims=True), 80, rng)
    assert two_nn(x) == pytest.approx(d, rel=0.2)
    assert levina_bickel(x, k=10)[0] == pytest.approx(d, rel=0.2)


def test_higher_dimension_gives_larger_estimate():
    rng = np.random.default_rng(0)
    low = intrinsic_dimension(embed(rng.normal(size=(400, 2)), 50, rng))
    high = intrinsic_dimension(embed(rng.normal(size=(400, 8)), 50, rng))
    assert high.two_nn > 2 * low.two_nn and high.mle > 2 * low.mle


def test_duplicate_points_are_collapsed():
    rng = np.random.default_rng(3)
    x = embed(rng.uniform(size=(300, 3)), 40, rng)
    once = intrinsic_dimension(x)
    twice = intrinsic_dimension(np.concatenate([x, x[:100]]))
    assert twice.n_points == 300
    assert twice.two_nn == pytest.approx(once.two_nn) and twice.mle == pytest.approx(once.mle)


def test_neighbour_distances_match_brute_force():
    rng = np.random.default_rng(4)
    import torch

    x = torch.tensor(rng.normal(size=(50, 7)))
    full = torch.cdist(x, x)
    full.fill_diagonal_(float("inf"))
    expected = full.sort(dim=1).values[:, :4]
    got = neighbour_distances(x, 4, chunk=16)  # chunked on purpose
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-10)


def test_k_is_clipped_to_small_zoos_and_tiny_inputs_are_refused():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(8, 30))
    assert levina_bickel(x, k=10)[1] == 7
    with pytest.raises(WeightspaceError, match="at least 3 distinct points"):
        two_nn(np.ones((5, 4)))
    with pytest.raises(WeightspaceError, match="at least 4 distinct points"):
        levina_bickel(rng.normal(size=(3, 4)))
    with pytest.raises(WeightspaceError, match="NaN"):
        two_nn(np.full((5, 4), np.nan))
