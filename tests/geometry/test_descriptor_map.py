import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from weightspace.errors import WeightspaceError
from weightspace.geometry.descriptor_map import descriptor_clustering, pairwise_distances, pca_map
from weightspace.nets import MLP

SPEC = MLP(input_shape=(5,), n_classes=2, hidden=(4,)).spec()


def members_following(descriptor: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """Flat weights = a fixed linear image of the descriptor plus isotropic noise."""
    rng = np.random.default_rng(seed)
    lift = rng.normal(size=(descriptor.shape[1], SPEC.numel))
    return descriptor @ lift + noise * rng.normal(size=(descriptor.shape[0], SPEC.numel))


def test_weights_that_follow_the_descriptor_cluster_by_it():
    angle = np.linspace(0, 3, 40)[:, None]
    scores = descriptor_clustering(members_following(angle, noise=0.05), angle, k=3)
    assert scores["spearman"] > 0.95
    assert scores["knn_r2"] > 0.95
    assert scores["k"] == 3


def test_weights_unrelated_to_the_descriptor_do_not():
    angle = np.linspace(0, 3, 40)[:, None]
    rng = np.random.default_rng(1)
    scores = descriptor_clustering(rng.normal(size=(40, SPEC.numel)), angle, k=3)
    assert abs(scores["spearman"]) < 0.2
    assert scores["knn_r2"] < 0.3


def test_single_task_zoo_has_no_clustering_score():
    scores = descriptor_clustering(np.random.default_rng(0).normal(size=(6, 10)), np.zeros((6, 2)))
    assert scores["spearman"] is None and scores["knn_r2"] is None
    with pytest.raises(WeightspaceError, match="at least 3 members"):
        descriptor_clustering(np.zeros((2, 10)), np.arange(2.0)[:, None])


def test_pairwise_distances_are_exact_in_the_reduced_frame():
    x = np.random.default_rng(2).normal(size=(12, 300))
    np.testing.assert_allclose(pairwise_distances(x), cdist(x, x), atol=1e-6)


def test_pca_map_puts_the_main_direction_first():
    angle = np.linspace(0, 3, 30)[:, None]
    flat = members_following(angle, noise=0.01)
    stacked = SPEC.unflatten(torch.tensor(flat, dtype=torch.float32))
    coords, ratio = pca_map(SPEC, stacked)
    assert coords.shape == (30, 2)
    assert ratio[0] > 0.95 > ratio[1]
    assert abs(np.corrcoef(coords[:, 0], angle[:, 0])[0, 1]) > 0.99
    # a two-member zoo still yields a two-column map
    two, r2 = pca_map(SPEC, {n: t[:2] for n, t in stacked.items()})
    assert two.shape == (2, 2) and r2.shape == (2,)
