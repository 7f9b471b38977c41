"""Few-shot fine-tuning as a careful user runs it: learning rate and step count chosen per task
by k-fold cross-validation on the support set, then one run on the whole support set.

A fixed budget with the zoo's learning rate overfits a 100-example support set (measured: on
fmnist-rotate 0.811 after 10 steps, 0.766 at the zoo's full budget), so comparing a generator
with it alone flatters the generator. Here every task, independently:

1. splits its support set into ``folds`` parts (a seeded permutation of its own examples);
2. for every learning rate ``lr_scales x base lr`` and fold, fine-tunes the start on the other
   folds and records accuracy on the held-out fold at every step of ``steps``;
3. picks the (lr, steps) with the best mean held-out-fold accuracy (ties: fewer steps, then the
   smaller lr: the cheaper and more conservative choice), k = 0 included, so a start that
   fine-tuning only hurts is kept as it is;
4. fine-tunes the start on the whole support set with that choice.

The test set is never touched: the choice is a function of the start and the support set only.
All tasks x folds run as one batched fine-tune per learning rate. ``steps_run`` counts every
step the selection and the final run cost one task, so its seconds can be charged in full.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import torch

from weightspace.adapt.finetune import FinetuneConfig, finetune
from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture

DEFAULT_STEPS = (0, 5, 10, 20, 50, 100, 200, 500)
DEFAULT_LR_SCALES = (0.1, 0.3, 1.0)


@dataclass
class TunedChoice:
    lr: float
    steps: int
    cv_acc: float  # mean held-out-fold accuracy of the choice
    steps_run: int  # selection steps (every lr x fold to the largest grid step) + the final run's


@dataclass
class TunedRun:
    choices: list[TunedChoice]  # per task
    weights: dict[str, torch.Tensor]  # stacked (T, ...): each task's start fine-tuned with its choice
    examples_per_step: int


def _folds(n: int, folds: int, seed: int, task_index: int) -> list[torch.Tensor]:
    digest = hashlib.sha256(f"cv:{seed}:{task_index}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    return list(torch.randperm(n, generator=gen).chunk(folds))


def check_grid(steps: Sequence[int], lr_scales: Sequence[float], folds: int) -> None:
    if folds < 2:
        raise WeightspaceError(f"cross-validated fine-tuning needs at least 2 folds, got {folds}.")
    if not steps or any(k < 0 for k in steps):
        raise WeightspaceError(f"cross-validation steps must be non-negative step counts, got {list(steps)}.")
    if not lr_scales or any(s <= 0 for s in lr_scales):
        raise WeightspaceError(f"cross-validation learning-rate scales must be positive, got {list(lr_scales)}.")


def cross_validate(arch: Architecture, starts: Mapping[str, torch.Tensor], xs: Sequence[torch.Tensor],
                   ys: Sequence[torch.Tensor], cfg: FinetuneConfig, steps: Sequence[int] = DEFAULT_STEPS,
                   lr_scales: Sequence[float] = DEFAULT_LR_SCALES, folds: int = 4, seed: int = 0,
                   task_indices: Sequence[int] | None = None,
                   run_sizes: Sequence[int] | None = None) -> list[TunedChoice]:
    """Per task, the (lr, steps) that fine-tunes its start best on held-out support folds.
    ``run_sizes``: the support-set sizes of every task of the run when these are a chunk of it
    (with ``task_indices``), so the chunk uses the whole run's batch size."""
    check_grid(steps, lr_scales, folds)
    t = len(ys)
    indices = list(range(t)) if task_indices is None else list(task_indices)
    if any(len(y) < folds for y in ys):
        raise WeightspaceError(f"{folds}-fold cross-validation needs at least {folds} support examples per task, "
                               f"got {min(len(y) for y in ys)}.")
    grid = sorted(set(int(k) for k in steps))
    parts = [_folds(len(y), folds, seed, i) for y, i in zip(ys, indices)]
    train_x, train_y, val_x, val_y = [], [], [], []
    for x, y, split in zip(xs, ys, parts):  # member t * folds + f: task t without its fold f
        for f in range(folds):
            rest = torch.cat([p for g, p in enumerate(split) if g != f])
            train_x.append(x[rest]), train_y.append(y[rest]), val_x.append(x[split[f]]), val_y.append(y[split[f]])
    init = {n: v.repeat_interleave(folds, dim=0) for n, v in starts.items()}
    # The whole run's batch: capped by its smallest fold-training set (fold sizes depend on n only).
    sizes = [len(y) for y in ys] if run_sizes is None else list(run_sizes)
    cfg = replace(cfg, batch_size=min([cfg.batch_size, *(n - len(p) for n in sizes for p in torch.arange(n).chunk(folds))]))
    member_tasks = [i * folds + f for i in indices for f in range(folds)]  # distinct example orders per fold
    scores = torch.zeros(len(lr_scales), t, len(grid))
    for a, scale in enumerate(lr_scales):
        run = finetune(arch, init, train_x, train_y, replace(cfg, lr=cfg.lr * scale), grid[-1],
                       test=(val_x, val_y), record_at=grid, seed=seed, task_indices=member_tasks)
        at = [run.grid.tolist().index(k) for k in grid]
        scores[a] = run.test_acc[:, at].view(t, folds, len(grid)).mean(1)
    spent = folds * len(lr_scales) * grid[-1]
    choices = []
    for i in range(t):
        # best accuracy; ties to fewer steps, then the smaller learning rate
        options = [(-float(scores[a, i, g]), grid[g], lr_scales[a], a, g)
                   for a in range(len(lr_scales)) for g in range(len(grid))]
        _, k, scale, a, g = min(options)
        choices.append(TunedChoice(cfg.lr * scale, k, float(scores[a, i, g]), spent + k))
    return choices


def tuned_finetune(arch: Architecture, starts: Mapping[str, torch.Tensor], xs: Sequence[torch.Tensor],
                   ys: Sequence[torch.Tensor], cfg: FinetuneConfig, steps: Sequence[int] = DEFAULT_STEPS,
                   lr_scales: Sequence[float] = DEFAULT_LR_SCALES, folds: int = 4, seed: int = 0,
                   task_indices: Sequence[int] | None = None, run_sizes: Sequence[int] | None = None) -> TunedRun:
    """Cross-validate (lr, steps) per task, then fine-tune each start on its whole support set.
    A chunk of a run passes its tasks' global ``task_indices`` and every task's ``run_sizes``
    (support-set sizes): its batch sizes are then the whole run's and its results the same."""
    choices = cross_validate(arch, starts, xs, ys, cfg, steps, lr_scales, folds, seed, task_indices, run_sizes)
    # One batch size for every final run: the smallest support set of the whole run caps it.
    cfg = replace(cfg, batch_size=min([cfg.batch_size, *([len(y) for y in ys] if run_sizes is None else run_sizes)]))
    out = {n: v.detach().clone().float() for n, v in starts.items()}
    batch = 0
    for lr in sorted({c.lr for c in choices}):
        rows = [i for i, c in enumerate(choices) if c.lr == lr and c.steps > 0]
        if not rows:
            continue
        keep = sorted({choices[i].steps for i in rows})
        sub = {n: v[rows] for n, v in starts.items()}
        idx = None if task_indices is None else [task_indices[i] for i in rows]
        run = finetune(arch, sub, [xs[i] for i in rows], [ys[i] for i in rows], replace(cfg, lr=lr), keep[-1],
                       keep=keep, seed=seed, task_indices=idx if idx is not None else rows)
        batch = run.examples_per_step
        for j, i in enumerate(rows):
            for n in out:
                out[n][i] = run.snapshots[choices[i].steps][n][j]
    return TunedRun(choices, out, batch or min([cfg.batch_size, *[len(y) for y in ys]]))
