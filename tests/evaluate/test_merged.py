"""Task arithmetic and TIES for shared-start MLP zoos: merged once, λ picked per task by support loss."""

from __future__ import annotations

import torch

from weightspace.adapt.task_vectors import task_arithmetic, ties_merge, trim
from weightspace.evaluate.context import load_context
from weightspace.io import load_safetensors
from weightspace.evaluate.merged import ARITHMETIC_GRID, TIES_GRID, task_vector_methods
from weightspace.nets import MLP
from weightspace.tasks import make_family
from weightspace.zoo.build import build_zoo
from weightspace.zoo.recipe import TrainConfig


def test_merges_are_built_from_the_shared_start_with_lambda_from_the_grid(shared_zoo):
    ctx = load_context(shared_zoo)
    methods = {m.key: m for m in task_vector_methods(ctx)}
    assert set(methods) == {"task-arithmetic", "ties"} and all(m.kind == "merging" for m in methods.values())
    m = len(ctx.records)
    assert all(lam in [c / m for c in ARITHMETIC_GRID] for lam in methods["task-arithmetic"].info["lambda"])
    assert all(lam in TIES_GRID for lam in methods["ties"].info["lambda"])
    base = load_safetensors(shared_zoo / "base.safetensors")[0]
    summed = task_arithmetic({n: ctx.params[n][i] - base[n] for n in ctx.spec.names} for i in range(m))
    lam = methods["task-arithmetic"].info["lambda"][0]
    for n in ctx.spec.names:
        torch.testing.assert_close(methods["task-arithmetic"].weights[0][n], base[n] + lam * summed[n])


def test_an_independent_zoo_has_no_task_vectors(tmp_path):
    family = make_family("digits-subsets", n_tasks=4, n_heldout=1)
    arch = MLP(input_shape=(1, 10, 10), n_classes=2, hidden=(8,))
    build_zoo(tmp_path / "zoo", family, arch, TrainConfig(steps=20), workers=0, progress=False).close()
    assert task_vector_methods(load_context(tmp_path / "zoo")) == []


def test_ties_keeps_the_agreeing_entries_and_averages_them():
    a = {"w": torch.tensor([1.0, -2.0, 0.1, 3.0])}
    b = {"w": torch.tensor([3.0, 2.0, 0.0, -1.0])}
    assert trim(a, 0.5)["w"].tolist() == [0.0, -2.0, 0.0, 3.0]
    merged = ties_merge([a, b], keep=1.0)["w"]
    # entry 0: both positive -> mean 2; entry 1: -2 vs 2, tie-breaking sign of the sum (0) keeps none;
    # entry 3: 3 vs -1 -> positive wins, only 3 counts
    torch.testing.assert_close(merged, torch.tensor([2.0, 0.0, 0.1, 3.0]))
