"""The cross-validated fine-tuning method in the harness never looks at the test set."""

from dataclasses import replace

import pytest
import torch

from weightspace.evaluate.context import load_context
from weightspace.evaluate.finetuning import CVGrid, tuned_finetune_method
from weightspace.evaluate.harness import finetune_config, EvalConfig
from weightspace.evaluate.methods import rank_by_support, retrieval_methods


@pytest.fixture(scope="module")
def ctx(shared_zoo):
    return load_context(shared_zoo)


def _method(ctx):
    retrieval, _ = retrieval_methods(ctx, rank_by_support(ctx))
    grid = CVGrid(folds=3, lr_scales=(0.3, 1.0), steps=(0, 5, 20, 500), max_steps=40)
    return tuned_finetune_method(ctx, retrieval, "zoo-best", finetune_config(ctx, EvalConfig()), grid,
                                 {"support": 0.001, "train": 0.002}, seed=0)


def test_changing_only_the_test_labels_changes_nothing(ctx):
    first = _method(ctx)
    original = ctx.tasks
    try:
        ctx.tasks = [replace(t, y_test=1 - t.y_test, x_test=torch.randn_like(t.x_test)) for t in original]
        second = _method(ctx)
    finally:
        ctx.tasks = original
    assert first.info["chosen"] == second.info["chosen"]
    for a, b in zip(first.weights, second.weights):
        for n in a:
            torch.testing.assert_close(a[n], b[n])


def test_cost_counts_every_selection_step(ctx):
    m = _method(ctx)
    assert m.key == "finetune:zoo-best:support@cv" and m.kind == "finetune" and m.info["tuned"]
    assert m.info["steps_grid"] == [0, 5, 20, 40]  # 500 is above the budget of 40, which joins the grid
    for c, secs, ret_secs in zip(m.info["chosen"], m.seconds, retrieval_methods(ctx, rank_by_support(ctx))[0].seconds):
        assert c["steps_run"] == 3 * 2 * 40 + c["steps"]
        assert secs >= c["steps_run"] * 0.001
