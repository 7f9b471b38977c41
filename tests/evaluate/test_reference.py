"""The reference is the better of two recipes on a validation slice of the training data."""

from dataclasses import replace

import pytest
import torch

from weightspace.evaluate.context import load_context
from weightspace.evaluate.reference import RECIPES, _validation_split, reference_method
from weightspace.nets import MLP
from weightspace.tasks import make_family
from weightspace.zoo.build import build_zoo
from weightspace.zoo.recipe import TrainConfig


@pytest.fixture(scope="module", params=["shared", "independent"])
def ctx(request, tmp_path_factory):
    torch.set_num_threads(1)
    family = make_family("digits-subsets", n_tasks=6, n_heldout=2)
    arch = MLP(input_shape=(1, 10, 10), n_classes=2, hidden=(8,))
    path = tmp_path_factory.mktemp(f"ref-{request.param}") / "zoo"
    build_zoo(path, family, arch, TrainConfig(steps=60), init=request.param, pretrain_steps=40, include_heldout=True,
              workers=0, progress=False).close()
    return load_context(path)


def test_validation_slice_is_disjoint_and_seeded(ctx):
    task = ctx.tasks[0]
    fit, xv, yv = _validation_split(task, 0.2, seed=0)
    assert len(fit.y_train) + len(yv) == len(task.y_train) and len(yv) == round(0.2 * len(task.y_train))
    fit2, xv2, _ = _validation_split(task, 0.2, seed=0)
    assert torch.equal(xv, xv2) and torch.equal(fit.x_train, fit2.x_train)
    assert torch.equal(fit.x_test, task.x_test)  # the test set is untouched


def test_reference_records_its_choice_and_reuses_stored_members(ctx):
    ref = reference_method(ctx, seed=0)
    assert len(ref.weights) == len(ctx.tasks) and set(ref.info["recipe"]) <= set(RECIPES)
    sel = ref.info["selection"]
    assert set(sel["val_acc_mean"]) == set(RECIPES)
    zoo_recipe = sel["zoo_recipe"]
    assert zoo_recipe == ("shared-start" if not ctx.aligned else "scratch")
    # every task that kept the zoo's recipe reuses its stored held-out member
    assert ref.info["source"]["zoo heldout members"] == ref.info["recipe"].count(zoo_recipe)


def test_choice_never_looks_at_the_test_set(ctx):
    first = reference_method(ctx, seed=0)
    original = ctx.tasks
    try:
        ctx.tasks = [replace(t, y_test=1 - t.y_test) for t in original]
        second = reference_method(ctx, seed=0)
    finally:
        ctx.tasks = original
    assert first.info["recipe"] == second.info["recipe"]
    assert first.info["selection"] == second.info["selection"]


def test_no_selection_keeps_the_zoo_recipe(ctx):
    ref = reference_method(ctx, seed=0, select=False)
    assert ref.info["selection"]["note"].startswith("one recipe only")
    assert ref.info["source"]["zoo heldout members"] == len(ctx.tasks)
