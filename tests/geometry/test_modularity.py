import numpy as np
import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.geometry.modularity import blocks, descriptor_r2, layer_name, modularity
from weightspace.nets import MLP

SPEC = MLP(input_shape=(8,), n_classes=3, hidden=(6,)).spec()


def zoo_where_only_fc1_follows_the_task(m: int = 48, seed: int = 0):
    """fc1 is a smooth (non-linear) function of a task angle; fc0 is seed noise unrelated to it."""
    g = torch.Generator().manual_seed(seed)
    angle = torch.linspace(0, 1.5, m, dtype=torch.float64)
    stacked = {n: torch.zeros(m, *s) for n, s in SPEC.shapes.items()}
    stacked["fc0.weight"] = torch.randn(m, *SPEC.shapes["fc0.weight"], generator=g)
    d1, d2 = (torch.randn(*SPEC.shapes["fc1.weight"], generator=g) for _ in range(2))
    stacked["fc1.weight"] = (angle.view(m, 1, 1) * d1 + (angle**2).view(m, 1, 1) * d2).float() \
        + 0.01 * torch.randn(m, *SPEC.shapes["fc1.weight"], generator=g)
    return stacked, angle.numpy()[:, None]


def test_blocks_group_weight_and_bias_by_layer():
    assert layer_name("fc0.weight") == "fc0" and layer_name("head") == "head"
    assert blocks(SPEC, "layer") == {"fc0": ["fc0.weight", "fc0.bias"], "fc1": ["fc1.weight", "fc1.bias"]}
    assert list(blocks(SPEC, "tensor")) == list(SPEC.names)
    with pytest.raises(WeightspaceError):
        blocks(SPEC, "module")


def test_descriptor_explains_the_layer_that_follows_it_and_not_the_other():
    stacked, angle = zoo_where_only_fc1_follows_the_task()
    rows = {r.name: r for r in modularity(SPEC, stacked, angle, level="layer")}
    assert rows["fc1"].descriptor_r2 > 0.9
    assert rows["fc0"].descriptor_r2 < 0.2
    assert sum(r.variance_share for r in rows.values()) == pytest.approx(1.0)
    assert rows["fc0"].n_params == SPEC.tensor("fc0.weight").numel + SPEC.tensor("fc0.bias").numel
    # fc1 varies along two directions only, fc0 along many
    assert rows["fc1"].dims_90 <= 2 < rows["fc0"].dims_90


def test_variance_share_counts_each_tensor():
    stacked, angle = zoo_where_only_fc1_follows_the_task()
    rows = {r.name: r for r in modularity(SPEC, stacked, angle, level="tensor")}
    assert set(rows) == set(SPEC.names)
    assert rows["fc0.bias"].variance_share == 0.0 and rows["fc0.bias"].descriptor_r2 is None
    x = {n: t.double().reshape(t.shape[0], -1) for n, t in stacked.items()}
    var = {n: float(((v - v.mean(0)) ** 2).sum()) for n, v in x.items()}
    assert rows["fc1.weight"].variance_share == pytest.approx(var["fc1.weight"] / sum(var.values()))


def test_no_descriptor_or_constant_descriptor_gives_none():
    stacked, angle = zoo_where_only_fc1_follows_the_task(m=12)
    assert all(r.descriptor_r2 is None for r in modularity(SPEC, stacked, None))
    assert all(r.descriptor_r2 is None for r in modularity(SPEC, stacked, np.ones((12, 1))))


def test_descriptor_r2_is_out_of_sample():
    # pure noise targets with as many features as members: in-sample fitting would score high
    rng = np.random.default_rng(0)
    r2 = descriptor_r2(rng.normal(size=(20, 3)), rng.normal(size=(20, 4)), seed=0)
    assert r2 < 0.1


def test_modularity_needs_two_members():
    stacked, _ = zoo_where_only_fc1_follows_the_task(m=1)
    with pytest.raises(WeightspaceError, match="at least 2 members"):
        modularity(SPEC, stacked)


def test_ridge_recovers_a_linear_map_and_polynomial_features_are_degree_two():
    from weightspace.geometry.modularity import polynomial_features, ridge_predict

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2))
    y = x @ np.array([[1.0, -2.0], [0.5, 3.0]]) + 3.0
    np.testing.assert_allclose(ridge_predict(x[:20], y[:20], x[20:], alpha=1e-9), y[20:], atol=1e-6)
    f = polynomial_features(np.array([[2.0, 3.0]]))
    np.testing.assert_array_equal(f, [[2.0, 3.0, 4.0, 6.0, 9.0]])
