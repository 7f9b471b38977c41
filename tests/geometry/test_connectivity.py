import numpy as np
import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.geometry.connectivity import (
    BarrierSummary, barrier, interpolate, interpolation_curve, lambda_grid, pair_connectivity, sample_pairs,
    zoo_connectivity,
)
from weightspace.nets import MLP
from weightspace.symmetry.permute import apply_permutation, random_permutation

ARCH = MLP(input_shape=(6,), n_classes=3, hidden=(8,))
SPEC = ARCH.spec()


def data(n: int = 200, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def teacher(seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """A confident net and data it labels itself: accuracy 1 at both ends of any path between
    it and a permuted copy, so the midpoint (a different function) can only do worse."""
    params = ARCH.init_params(seed)
    params["fc1.weight"] = 5 * params["fc1.weight"]
    x, _ = data()
    y = torch.func.functional_call(ARCH.module(), params, (x,)).argmax(1)
    return params, x, y


def test_barrier_of_known_curves():
    lam = np.linspace(0, 1, 5)
    # chord 1 - 0.2 lambda = [1, .95, .9, .85, .8]; the largest drop below it is at lambda = 0.5
    assert barrier([1.0, 0.9, 0.5, 0.9, 0.8], lam, higher_is_better=True) == pytest.approx(0.4)
    assert barrier([0.0, 1.0, 2.0, 1.0, 0.0], lam, higher_is_better=False) == pytest.approx(2.0)
    # a path that is better than the chord everywhere has no barrier
    assert barrier([0.5, 0.9, 1.0, 0.9, 0.5], lam, higher_is_better=True) == 0.0
    assert barrier([1.0, 0.2, 0.1, 0.2, 1.0], lam, higher_is_better=False) == 0.0
    with pytest.raises(WeightspaceError, match="start at 0 and end at 1"):
        barrier([1, 2], [0.1, 1.0], True)


def test_interpolate_hits_both_endpoints():
    a, b = ARCH.init_params(0), ARCH.init_params(1)
    path = interpolate(a, b, lambda_grid(5))
    for n in SPEC.names:
        assert torch.equal(path[n][0], a[n]) and torch.allclose(path[n][-1], b[n])
        assert torch.allclose(path[n][2], (a[n] + b[n]) / 2)
    with pytest.raises(WeightspaceError):
        lambda_grid(2)


def test_model_with_itself_has_zero_barrier():
    a = ARCH.init_params(3)
    x, y = data()
    curve = interpolation_curve(ARCH, a, a, x, y, lambda_grid(7))
    assert curve.acc_barrier == 0.0 and curve.loss_barrier == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(curve.acc, curve.acc[0])


def test_curve_endpoints_are_the_members_own_scores():
    from weightspace.zoo.train import evaluate_members

    a, b = ARCH.init_params(4), ARCH.init_params(5)
    x, y = data()
    curve = interpolation_curve(ARCH, a, b, x, y)
    acc, loss = evaluate_members(ARCH, {n: torch.stack([a[n], b[n]]) for n in SPEC.names}, x, y)
    assert curve.acc[[0, -1]] == pytest.approx(acc.double().numpy())
    assert curve.loss[[0, -1]] == pytest.approx(loss.double().numpy(), rel=1e-5)


def test_alignment_removes_the_barrier_to_a_permuted_copy():
    a, x, y = teacher(6)
    b = apply_permutation(a, SPEC, random_permutation(SPEC, torch.Generator().manual_seed(0)))
    result = pair_connectivity(ARCH, a, b, x, y, lambda_grid(9), align=True)
    # b computes a's function, so after matching the path is constant
    assert np.allclose(result.aligned.acc, result.aligned.acc[0])
    assert result.aligned.acc_barrier == 0.0 and result.aligned.loss_barrier == pytest.approx(0.0, abs=1e-6)
    # before matching, the midpoint is a different network that mislabels some of the data
    assert result.raw.acc[0] == 1.0 and result.raw.acc_barrier > 0.05 and result.raw.loss_barrier > 0.0
    assert pair_connectivity(ARCH, a, b, x, y, align=False).aligned is None


def test_sample_pairs_prefers_same_task_different_seed():
    tasks = ["t0", "t0", "t1", "t1", "t2"]
    seeds = [0, 1, 0, 1, 0]
    desc = [[0.0], [0.0], [1.0], [1.0], [2.0]]
    pairs, pairing = sample_pairs(tasks, seeds, desc, k=10, seed=0)
    assert pairing == "same_task" and pairs == [(0, 1), (2, 3)]
    few, _ = sample_pairs(tasks, seeds, desc, k=1, seed=0)
    assert len(few) == 1 and few[0] in pairs
    assert sample_pairs(tasks, seeds, desc, k=1, seed=0) == sample_pairs(tasks, seeds, desc, k=1, seed=0)


def test_sample_pairs_falls_back_to_neighbouring_tasks():
    tasks = ["a", "b", "c", "d"]
    desc = [[0.0], [1.0], [5.0], [5.5]]
    pairs, pairing = sample_pairs(tasks, [0, 0, 0, 0], desc, k=10, seed=0)
    assert pairing == "neighbouring_tasks"
    assert pairs == [(0, 1), (2, 3)]  # every member's nearest other task
    with pytest.raises(WeightspaceError):
        sample_pairs(["a", "a"], [0, 0], [[0.0], [0.0]], k=1)
    with pytest.raises(WeightspaceError):
        sample_pairs(["a"], [0], [[0.0]], k=1)


def test_zoo_connectivity_summarises_pairs():
    members = [ARCH.init_params(s) for s in range(4)]
    stacked = {n: torch.stack([m[n] for m in members]) for n in SPEC.names}
    x, y = data()
    seen = []
    summary = zoo_connectivity(ARCH, stacked, [(0, 1), (2, 3), (1, 1)], lambda i, j: (seen.append((i, j)) or (x, y)),
                               "same_task", lambdas=lambda_grid(5), align=True)
    assert seen == [(0, 1), (2, 3), (1, 1)]
    d = summary.to_dict()
    assert d["pairs"] == [[0, 1], [2, 3], [1, 1]] and d["pairing"] == "same_task"
    raw = d["raw"]
    assert raw["n_pairs"] == 3 and len(raw["acc_mean"]) == 5 and raw["lambdas"][-1] == 1.0
    barriers = [r.raw.loss_barrier for r in summary.results]
    assert raw["loss_barrier"]["mean"] == pytest.approx(np.mean(barriers))
    assert raw["loss_barrier"]["std"] == pytest.approx(np.std(barriers, ddof=1))
    assert BarrierSummary("same_task").stats("raw") is None
