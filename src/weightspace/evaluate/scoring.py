"""Scoring: every method's weights on every held-out task's test set, plus novelty.

Per task, all methods' models and all zoo members are evaluated in one batched pass each; the
zoo's boolean error matrix is built once and every model's error set is compared against it
(highest IoU). Aligned distances to the nearest zoo member are computed for all models of a
task together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weightspace.evaluate.context import ZooContext
from weightspace.evaluate.methods import Method
from weightspace.evaluate.novelty import error_iou_max
from weightspace.nets.predict import predict_members
from weightspace.spec import stack_members


@dataclass
class Scores:
    acc: torch.Tensor  # (T,) test accuracy per task
    bal_acc: torch.Tensor  # (T,) balanced accuracy: the mean over classes of per-class recall
    iou_max: torch.Tensor  # (T,) highest error-set IoU with any zoo member
    nn_dist: torch.Tensor  # (T,) aligned L2 distance to the nearest zoo member
    nn_member: torch.Tensor  # (T,) index of that member in ctx.records


def score_methods(ctx: ZooContext, methods: list[Method], progress=None) -> tuple[dict[str, Scores], torch.Tensor]:
    """Scores per method key, and the zoo members' own accuracy ``(T, M)`` on each held-out task."""
    n_tasks, k = len(ctx.tasks), len(methods)
    cols = {name: torch.zeros(k, n_tasks) for name in ("acc", "bal", "iou", "dist")}
    nearest = torch.zeros(k, n_tasks, dtype=torch.long)
    zoo_acc = []
    for t, task in enumerate(ctx.tasks):
        zoo_pred, _ = predict_members(ctx.arch, ctx.params, task.x_test, task.y_test)
        zoo_err = zoo_pred != task.y_test
        zoo_acc.append(1 - zoo_err.float().mean(1))
        stacked = stack_members((m.weights[t] for m in methods), ctx.spec)
        pred, _ = predict_members(ctx.arch, stacked, task.x_test, task.y_test)
        err = pred != task.y_test
        cols["acc"][:, t] = 1 - err.float().mean(1)
        cols["bal"][:, t] = balanced_accuracy(pred, task.y_test, task.n_classes)
        cols["iou"][:, t] = error_iou_max(err, zoo_err)
        cols["dist"][:, t], nearest[:, t] = ctx.neighbours.distances(stacked)
        if progress is not None:
            progress(t + 1, n_tasks)
    scores = {m.key: Scores(cols["acc"][i], cols["bal"][i], cols["iou"][i], cols["dist"][i], nearest[i]) for i, m in enumerate(methods)}
    return scores, torch.stack(zoo_acc)


def balanced_accuracy(pred: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per row of ``pred`` (K, N): the mean over the classes present in ``y`` of the fraction of
    that class predicted correctly. Subset tasks are imbalanced ("is it a 3?" is 90% negatives),
    so a constant predictor scores 0.9 accuracy but 0.5 balanced accuracy."""
    present = torch.bincount(y, minlength=n_classes) > 0
    onehot = torch.nn.functional.one_hot(y, n_classes).float()[:, present]  # (N, C')
    hits = (pred == y).float() @ onehot  # (K, C') correct predictions per class
    return (hits / onehot.sum(0)).mean(1)
