"""An MTEB-style classification score of every method's body, for architectures with features.

Test accuracy reads a method's weights with their own head. For a LoRA set of a sentence model
the question a retrieval user asks is another one: how good are the *embeddings* the adapted
model gives for this task? MTEB answers it for classification tasks by fitting a logistic
regression on the embeddings and reporting its accuracy. Here, per method and held-out task:

1. embed every sentence of the task's data (its training and test sets together) with the
   method's body (``arch.features``: the adapted, normalised mean-pooled embedding the head
   reads; the head itself is not read);
2. stratified k-fold over those examples (default k = 5, shuffled, seeded): fit scikit-learn's
   ``LogisticRegression`` (lbfgs, C = 1, max_iter = 100: MTEB's settings) on k-1 folds, predict
   the held-out fold;
3. report the mean over folds of accuracy (``mteb_accuracy``) and of macro F1 (``mteb_f1``).

How this differs from MTEB's ``AbsTaskClassification`` (read in its source, logReg method):

- MTEB trains on the task's *train* split undersampled to ``samples_per_label`` examples per
  label (8 by default; tasks may set more), repeats that ``n_experiments`` times (10 by default)
  with fresh draws, and scores each fit on the whole *test* split; its figure is the mean over
  those experiments. Here every example serves once as test data and the fits see (k-1)/k of
  the data, so the figure measures the embeddings with far more training examples than MTEB's
  8 per label: it is a higher number, and closer to what a probe on all of a task's data gets.
  The few-shot reading of the same embeddings is the ``probe`` baseline (support set only).
- The split is stratified k-fold instead of MTEB's fixed train/test splits (the held-out tasks
  here have one small train/test split each; folds use every example for both roles).
- MTEB also reports weighted F1 and, for two classes, average precision; only accuracy and
  macro F1 are kept (both cheap, and accuracy is MTEB's main score for classification).
- MTEB's ``LogisticRegression`` gets ``n_jobs=-1``; here one thread, BLAS included (vmap and
  processes give parallelism in this project). Features are passed as float64, MTEB passes the
  model's dtype.

The stage also returns each distinct body's features of the test inputs (``TestFeatures``):
scoring reads a method's test predictions from them through its head instead of running the
body again (harness.py runs this stage first where it is on).

Bodies repeat across methods (a ``+head`` mode and its plain mode, fine-tuning at 0 steps and its
start, the probe and every frozen body), so scores are cached per body (a hash of its tensors).
Cost: one forward pass over the task's data per distinct body, and k small regressions.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from weightspace.adapt.multitask import head_names
from weightspace.errors import WeightspaceError
from weightspace.evaluate.task_jobs import per_task, rebuild

MTEB_MAX_ITER = 100  # MTEB's logRegClassificationEvaluator default
MODES = ("auto", "on", "off")


@dataclass
class EmbeddingScores:
    accuracy: list[float | None]  # per task; None where the task has too few examples of a class to fold
    f1_macro: list[float | None]


def enabled(arch, mode: str) -> bool:
    """Whether the score is computed: ``auto`` = where the architecture exposes features."""
    if mode not in MODES:
        raise WeightspaceError(f"mteb={mode!r} is not one of {', '.join(MODES)} (auto: on where the architecture "
                               "exposes features).")
    if mode == "on" and getattr(arch, "features_dim", None) is None:
        raise WeightspaceError(f"mteb=on scores embeddings, which {arch.name} networks do not expose; use mteb=auto or off.")
    return mode == "on" or (mode == "auto" and getattr(arch, "features_dim", None) is not None)


def kfold_logistic(features: torch.Tensor, y: torch.Tensor, folds: int = 5, seed: int = 0) -> tuple[float, float] | None:
    """(mean accuracy, mean macro F1) of MTEB's logistic regression over stratified ``folds``;
    fewer folds when a class has fewer examples than ``folds``; None below two per class."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    x, labels = features.double().numpy(), y.numpy()
    counts = np.unique(labels, return_counts=True)[1]
    k = min(int(folds), int(counts.min())) if counts.size else 0
    if counts.size < 2 or k < 2:
        return None
    accs, f1s = [], []
    for train, test in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, labels):
        clf = LogisticRegression(max_iter=MTEB_MAX_ITER, random_state=seed)
        # One BLAS thread: a 384-wide regression is a few hundred small matrix-vector products, and
        # threads only contend over them (measured 4x faster than 2 threads on a busy 2-core machine).
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)  # MTEB's 100 iterations need not converge
            clf.fit(x[train], labels[train])
        pred = clf.predict(x[test])
        accs.append(float(np.mean(pred == labels[test])))
        f1s.append(float(f1_score(labels[test], pred, average="macro")))
    return float(np.mean(accs)), float(np.mean(f1s))


def task_features(arch, body: Mapping[str, torch.Tensor], task) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, features_dim) embeddings of the task's training and test inputs, and their labels.
    The two sets are embedded apart: token ids are padded per set, so they need not stack."""
    feats = [arch.features(body, task.x_train), arch.features(body, task.x_test)]
    return torch.cat(feats), torch.cat([task.y_train, task.y_test])


def body_hash(weights: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(weights):
        t = weights[name].detach().contiguous().float()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


@dataclass
class TestFeatures:
    """What the MTEB-style stage computed anyway, for scoring to reuse: per task, the test-set
    features of each distinct body, and which of them each method's body is."""

    bodies: list[list[torch.Tensor]]  # [task][body]: (N_test, features_dim)
    owner: list[list[int]]  # [task][method]: index into bodies[task]


def embedding_scores(ctx, methods: Sequence, folds: int = 5, seed: int = 0,
                     progress: Callable[[int, int], None] | None = None, pool=None) -> dict[str, EmbeddingScores]:
    """Per method key, the MTEB-style score of its body on every held-out task of ``ctx``;
    ``pool``: one job per task on the harness's workers (task_jobs)."""
    return embedding_scores_and_features(ctx, methods, folds, seed, progress, pool)[0]


def embedding_scores_and_features(ctx, methods: Sequence, folds: int = 5, seed: int = 0,
                                  progress: Callable[[int, int], None] | None = None,
                                  pool=None) -> tuple[dict[str, EmbeddingScores], TestFeatures]:
    """``embedding_scores``, and the test-set features of every distinct body (``TestFeatures``)."""
    head = tuple(head_names(ctx.arch)) if getattr(ctx.arch, "features_dim", None) is not None else ()
    distinct, owner = [], []  # per task: the distinct bodies, and the index of each method's body among them
    for t in range(len(ctx.tasks)):
        index: dict[str, int] = {}
        bodies, of = [], []
        for m in methods:
            body = {k: v for k, v in m.weights[t].items() if k not in head}
            key = body_hash(body)
            if key not in index:
                index[key] = len(bodies)
                bodies.append(body)
            of.append(index[key])
        distinct.append(bodies)
        owner.append(of)
    out = {m.key: EmbeddingScores([], []) for m in methods}
    test = TestFeatures([None] * len(ctx.tasks), owner)
    stacked = lambda t: {n: torch.stack([b[n] for b in distinct[t]]) for n in distinct[t][0]}  # noqa: E731
    jobs = per_task(ctx, _scores_of_bodies, embedding_job, stacked, {"folds": folds, "seed": seed}, pool, progress)
    for t, (scores, feats) in jobs:
        test.bodies[t] = [torch.tensor(f) for f in feats]  # copies: Ray hands back read-only views
        for m, i in zip(methods, owner[t]):
            score = scores[i]
            out[m.key].accuracy.append(None if score is None else score[0])
            out[m.key].f1_macro.append(None if score is None else score[1])
    return out, test


def _scores_of_bodies(job: dict) -> tuple[list[tuple[float, float] | None], list]:
    """Per stacked body of ``job["nets"]``: its k-fold score on ``job["task"]``, and its features
    of the task's test inputs (numpy)."""
    nets, task, scores, test = job["nets"], job["task"], [], []
    for i in range(next(iter(nets.values())).shape[0] if nets else 0):
        with torch.no_grad():
            x, y = task_features(job["arch"], {k: v[i] for k, v in nets.items()}, task)
        scores.append(kfold_logistic(x, y, job["folds"], job["seed"]))
        test.append(x[len(task.y_train):].numpy())
    return scores, test


def embedding_job(payload: dict) -> tuple[list[tuple[float, float] | None], list]:
    """A worker's job: ``_scores_of_bodies`` on the rebuilt payload."""
    return _scores_of_bodies(rebuild(payload))


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def attach(entries: dict[str, dict[str, Any]], scores: Mapping[str, EmbeddingScores]) -> None:
    """Adds ``mteb_accuracy_mean`` / ``mteb_f1_mean`` to each method entry and ``mteb_accuracy`` /
    ``mteb_f1`` to each of its per-task rows."""
    for key, s in scores.items():
        e = entries.get(key)
        if e is None:
            continue
        e["mteb_accuracy_mean"], e["mteb_f1_mean"] = _mean(s.accuracy), _mean(s.f1_macro)
        for row, acc, f1 in zip(e["per_task"], s.accuracy, s.f1_macro):
            row["mteb_accuracy"], row["mteb_f1"] = acc, f1


def overall(entries: Mapping[str, Mapping[str, Any]], folds: int) -> dict[str, Any]:
    """``overall.mteb``: the protocol, and every scored method's mean accuracy and F1, best first."""
    scored = {k: e for k, e in entries.items() if e.get("mteb_accuracy_mean") is not None}
    ranking = sorted(scored, key=lambda k: -scored[k]["mteb_accuracy_mean"])
    return {"protocol": f"logistic regression (lbfgs, C=1, max_iter={MTEB_MAX_ITER}) on the method's embeddings of "
                        f"each task's train+test sentences, stratified {folds}-fold, mean over folds",
            "folds": folds, "ranking": ranking,
            "accuracy": {k: scored[k]["mteb_accuracy_mean"] for k in ranking},
            "f1_macro": {k: scored[k]["mteb_f1_mean"] for k in ranking}}
