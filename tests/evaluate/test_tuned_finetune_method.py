"""The cross-validated fine-tuning method in the harness never looks at the test set."""

from dataclasses import replace

import pytest
import torch

from weightspace.evaluate.context import load_context
from weightspace.evaluate.finetuning import CVGrid, tuned_finetune_method
from weightspace.evaluate.harness import finetune_config, EvalConfig
from weightspace.evaluate.methods import rank_by_support, retrieval_methods
from weightspace.nets import MLP
from weightspace.tasks import make_family
from weightspace.zoo.build import build_zoo
from weightspace.zoo.recipe import TrainConfig


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    torch.set_num_threads(1)
    family = make_family("digits-subsets", n_tasks=6, n_heldout=2)
    arch = MLP(input_shape=(1, 10, 10), n_classes=2, hidden=(8,))
    path = tmp_path_factory.mktemp("tuned") / "zoo"
    build_zoo(path, family, arch, TrainConfig(steps=60), init="shared", pretrain_steps=40, workers=0, progress=False).close()
    return load_context(path)


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
