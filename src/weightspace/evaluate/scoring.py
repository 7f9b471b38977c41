"""Scoring: every method's weights on every held-out task's test set, plus novelty.

Per task, all methods' models and all zoo members are evaluated in one batched pass each (on the
harness's worker pool when it has one, a job per task: task_jobs.py); the
zoo's boolean error matrix is built once and every model's error set is compared against it
(highest IoU). Aligned distances to the nearest zoo member are computed for all models of a
task together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from weightspace.adapt.multitask import head_names
from weightspace.evaluate.context import ZooContext
from weightspace.evaluate.embedding_classification import TestFeatures
from weightspace.evaluate.methods import Method
from weightspace.evaluate.novelty import error_iou_max
from weightspace.evaluate.task_jobs import per_task, rebuild
from weightspace.nets.predict import predict_members
from weightspace.spec import stack_members


@dataclass
class Scores:
    acc: torch.Tensor  # (T,) test accuracy per task
    bal_acc: torch.Tensor  # (T,) balanced accuracy: the mean over classes of per-class recall
    iou_max: torch.Tensor  # (T,) highest error-set IoU with any zoo member
    nn_dist: torch.Tensor  # (T,) aligned L2 distance to the nearest zoo member
    nn_member: torch.Tensor  # (T,) index of that member in ctx.records


def score_methods(ctx: ZooContext, methods: list[Method], progress=None, pool=None,
                  features: TestFeatures | None = None) -> tuple[dict[str, Scores], torch.Tensor]:
    """Scores per method key, and the zoo members' own accuracy ``(T, M)`` on each held-out task.
    ``pool``: the forward passes run there, one job per task (task_jobs). ``features``: the MTEB
    stage's test features of the methods' bodies; the methods' predictions are then their heads
    on those features (the architecture's contract: its logits are the head on its features)."""
    n_tasks, k = len(ctx.tasks), len(methods)
    cols = {name: torch.zeros(k, n_tasks) for name in ("acc", "bal", "iou", "dist")}
    nearest = torch.zeros(k, n_tasks, dtype=torch.long)
    stacked = lambda t: stack_members((m.weights[t] for m in methods), ctx.spec)  # noqa: E731
    # Half of the progress is the zoo's forwards, half the methods'.
    half = lambda offset: None if progress is None else (lambda done, n: progress(offset + done, 2 * n))  # noqa: E731
    zoo_err = [pred != task.y_test for (_, pred), task in zip(test_predictions(ctx, lambda t: ctx.params, pool, half(0)), ctx.tasks)]
    predictions = (test_predictions(ctx, stacked, pool, half(n_tasks)) if features is None
                   else heads_on_features(ctx, methods, features, half(n_tasks)))
    for t, pred in predictions:
        task = ctx.tasks[t]
        err = pred != task.y_test
        cols["acc"][:, t] = 1 - err.float().mean(1)
        cols["bal"][:, t] = balanced_accuracy(pred, task.y_test, task.n_classes)
        cols["iou"][:, t] = error_iou_max(err, zoo_err[t])
        cols["dist"][:, t], nearest[:, t] = ctx.neighbours.distances(stacked(t))
    scores = {m.key: Scores(cols["acc"][i], cols["bal"][i], cols["iou"][i], cols["dist"][i], nearest[i]) for i, m in enumerate(methods)}
    return scores, torch.stack([1 - e.float().mean(1) for e in zoo_err])


def _predict(job: dict) -> torch.Tensor:
    task = job["task"]
    return predict_members(job["arch"], job["nets"], task.x_test, task.y_test)[0]


def predict_job(payload: dict):
    """A worker's job: the predicted labels (numpy) of the payload's networks on its task's test set."""
    return _predict(rebuild(payload)).numpy()


def test_predictions(ctx: ZooContext, nets_of, pool=None, progress=None):
    """``(t, labels (K, N_test))`` of the K stacked networks ``nets_of(t)`` on task t's test set."""
    for t, pred in per_task(ctx, _predict, predict_job, nets_of, {}, pool, progress):
        # A worker's numpy labels are copied (Ray hands back read-only views); here they are a tensor.
        yield t, pred if isinstance(pred, torch.Tensor) else torch.tensor(pred)


def heads_on_features(ctx: ZooContext, methods: list[Method], features: TestFeatures, progress=None):
    """``(t, labels (K, N_test))``: each method's head on its body's test features."""
    weight, bias = head_names(ctx.arch)
    for t in range(len(ctx.tasks)):
        feats = features.bodies[t]
        yield t, torch.stack([F.linear(feats[i], m.weights[t][weight], m.weights[t][bias]).argmax(-1)
                              for m, i in zip(methods, features.owner[t])])
        if progress is not None:
            progress(t + 1, len(ctx.tasks))


def balanced_accuracy(pred: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per row of ``pred`` (K, N): the mean over the classes present in ``y`` of the fraction of
    that class predicted correctly. Subset tasks are imbalanced ("is it a 3?" is 90% negatives),
    so a constant predictor scores 0.9 accuracy but 0.5 balanced accuracy."""
    present = torch.bincount(y, minlength=n_classes) > 0
    onehot = torch.nn.functional.one_hot(y, n_classes).float()[:, present]  # (N, C')
    hits = (pred == y).float() @ onehot  # (K, C') correct predictions per class
    return (hits / onehot.sum(0)).mean(1)
