"""Cross-validated few-shot fine-tuning: the choice comes from the support set alone."""

import pytest
import torch

from weightspace.adapt.finetune import FinetuneConfig
from weightspace.adapt.tuned_finetune import _folds, cross_validate, tuned_finetune
from weightspace.errors import WeightspaceError
from weightspace.nets import MLP

ARCH = MLP(input_shape=(2,), n_classes=2, hidden=(8,))


def blobs(seed, n=40):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.3 + (y[:, None].float() * 2 - 1) * torch.tensor([1.0, 0.0])
    return x, y


def stacked(*members):
    return {n: torch.stack([m[n] for m in members]) for n in members[0]}


def test_folds_partition_each_support_set():
    parts = _folds(23, 4, seed=0, task_index=5)
    assert len(parts) == 4 and sorted(torch.cat(parts).tolist()) == list(range(23))
    assert torch.equal(torch.cat(parts), torch.cat(_folds(23, 4, seed=0, task_index=5)))  # seeded
    assert not torch.equal(torch.cat(parts), torch.cat(_folds(23, 4, seed=0, task_index=6)))  # per task


def test_an_untrained_start_is_trained_and_a_solved_task_is_left_alone():
    (xa, ya), (xb, yb) = blobs(0), blobs(1)
    cfg = FinetuneConfig(lr=0.05, batch_size=16)
    untrained = ARCH.init_params(0)
    solved = tuned_finetune(ARCH, stacked(untrained), [xa], [ya], cfg, steps=(0, 5, 20, 60), folds=4).weights
    solved = {n: v[0] for n, v in solved.items()}
    run = tuned_finetune(ARCH, stacked(untrained, solved), [xa, xb], [ya, yb], cfg, steps=(0, 5, 20, 60), folds=4)
    fresh, done = run.choices
    assert fresh.steps > 0 and fresh.cv_acc > 0.9
    assert done.steps == 0 or done.cv_acc == pytest.approx(1.0)  # ties go to fewer steps
    assert all(any(c.lr == pytest.approx(v) for v in (0.005, 0.015, 0.05)) for c in run.choices)
    assert fresh.steps_run == 4 * 3 * 60 + fresh.steps  # every selection step is charged
    for n in solved:
        if done.steps == 0:
            assert torch.equal(run.weights[n][1], solved[n])


def test_choice_depends_only_on_the_start_and_support_set():
    (x, y) = blobs(2)
    cfg = FinetuneConfig(lr=0.05, batch_size=16)
    a = cross_validate(ARCH, stacked(ARCH.init_params(3)), [x], [y], cfg, steps=(0, 10, 40), folds=3, seed=1)
    b = cross_validate(ARCH, stacked(ARCH.init_params(3)), [x], [y], cfg, steps=(0, 10, 40), folds=3, seed=1)
    assert a == b


def test_bad_grids_are_refused():
    x, y = blobs(0, n=3)
    with pytest.raises(WeightspaceError, match="at least 4 support examples"):
        cross_validate(ARCH, stacked(ARCH.init_params(0)), [x], [y], FinetuneConfig(), folds=4)
    with pytest.raises(WeightspaceError, match="at least 2 folds"):
        cross_validate(ARCH, stacked(ARCH.init_params(0)), [x], [y], FinetuneConfig(), folds=1)
