"""Fine-tuning many starts at once, each on its own task: the method generation must beat.

Why not ``zoo.train.train_members``: it starts every member from one shared init, while here
every held-out task starts from its own weights (its retrieved zoo member, or its generated
model). The loop is the same idea: all members' tensors are stacked, the loss is the *sum* of
per-member losses from one vmapped forward pass, so each member receives exactly its own
gradient, and Adam/SGD (element-wise optimisers) update each member as if it ran alone.

Each task's example order depends only on (seed, the task's index among all tasks under
evaluation), never on which other tasks share the run: fine-tuning tasks 0..T-1 together or in
chunks (on worker processes, on a Ray cluster) gives each task the same minibatches, so the
chunks reproduce the batched run up to float rounding.

Along the way it records test accuracy on a step grid (for "steps until it matches the
generator") and keeps the weights at the requested steps. Only the optimisation is timed;
evaluating on the test grid is bookkeeping, not part of what fine-tuning costs a user.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from weightspace.config import option
from weightspace.errors import WeightspaceError
from weightspace.nets.predict import accuracy_per_member
from weightspace.nets.base import Architecture
from weightspace.training_loop import TrainState, train
from weightspace.zoo.recipe import OPTIMIZERS, make_optimizer


@dataclass
class FinetuneConfig:
    optimizer: str = option("adam", "adam (AdamW, decoupled decay, as the zoo trainer) | sgd")
    lr: float = option(3e-3, "learning rate")
    momentum: float = option(0.9, "sgd momentum")
    weight_decay: float = option(0.0, "weight decay: decoupled for adam, added to the gradient for sgd")
    batch_size: int = option(64, "examples per step per task (capped by the smallest data set)")
    head_lr: float = option(0.0, "learning rate of the tensors named head.* (0: lr); LoRA recipes train their head faster")

    @classmethod
    def from_train_config(cls, d: Mapping) -> "FinetuneConfig":
        """The fine-tuning settings of a zoo member's recorded TrainConfig or LoRATrainConfig
        (unknown keys ignored)."""
        keys = {"optimizer", "lr", "momentum", "weight_decay", "batch_size", "head_lr"}
        return cls(**{k: v for k, v in d.items() if k in keys})


@dataclass
class FinetuneRun:
    grid: torch.Tensor  # (G,) steps at which test accuracy was measured (0 = the start)
    test_acc: torch.Tensor  # (T, G)
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # step -> stacked (T, ...)
    train_seconds: float = 0.0  # optimisation wall time for all T tasks together
    examples_per_step: int = 0  # per task


def task_generator(seed: int, task_index: int) -> torch.Generator:
    """The generator of one task's example order, from (seed, task index) alone."""
    digest = hashlib.sha256(f"finetune:{seed}:{task_index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _index_streams(sizes: Sequence[int], batch: int, steps: int, seed: int,
                   task_indices: Sequence[int]) -> torch.Tensor:
    """(T, steps * batch) example indices: each task walks through shuffled epochs of its own data."""
    out = []
    for n, index in zip(sizes, task_indices):
        gen = task_generator(seed, index)
        epochs = max(1, -(-steps * batch // n))  # zero steps still yields an (empty) stream
        out.append(torch.cat([torch.randperm(n, generator=gen) for _ in range(epochs)])[: steps * batch])
    return torch.stack(out) if out else torch.zeros(0, steps * batch, dtype=torch.long)


def _optimizer(cfg: FinetuneConfig, params: list[torch.Tensor], names: Sequence[str] = ()) -> torch.optim.Optimizer:
    """The zoo's own optimizer (zoo.recipe.make_optimizer: "adam" is AdamW with decoupled decay),
    with the head.* tensors in a group of their own when ``cfg.head_lr`` is set."""
    if cfg.optimizer not in OPTIMIZERS:
        raise WeightspaceError(f"unknown optimizer {cfg.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")
    if cfg.head_lr > 0 and names:
        head = [p for n, p in zip(names, params) if n.startswith("head.")]
        rest = [p for n, p in zip(names, params) if not n.startswith("head.")]
        params = [{"params": rest}, {"params": head, "lr": cfg.head_lr}]
    return make_optimizer(params, cfg)


def finetune(arch: Architecture, init: Mapping[str, torch.Tensor], xs: Sequence[torch.Tensor],
             ys: Sequence[torch.Tensor], cfg: FinetuneConfig, steps: int, *,
             test: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]] | None = None, eval_every: int = 0,
             keep: Sequence[int] = (), record_at: Sequence[int] = (), seed: int = 0,
             task_indices: Sequence[int] | None = None,
             progress: Callable[[int, int], None] | None = None) -> FinetuneRun:
    """Fine-tune stacked ``init`` (T members) for ``steps``; member i trains on ``(xs[i], ys[i])``.

    ``test=(xs, ys)`` with ``eval_every > 0`` records test accuracy at step 0, every
    ``eval_every`` steps, at every step in ``keep`` and ``record_at`` and at the end. ``keep`` also names the steps
    whose weights are returned (0 returns the start). ``task_indices[i]`` is member i's index
    among all tasks being fine-tuned (default 0..T-1); with ``seed`` it fixes that task's example
    order, so a chunk of tasks passes its members' global indices to replay the full run (and the
    full run's batch size: ``cfg.batch_size`` capped by the smallest data set of *all* tasks).
    """
    if steps < 0 or any(k < 0 or k > steps for k in (*keep, *record_at)):
        raise WeightspaceError(f"fine-tuning steps must lie in [0, {steps}], got {sorted({*keep, *record_at})}.")
    names = list(init)
    params = [init[n].detach().clone().float().requires_grad_(True) for n in names]
    t = params[0].shape[0]
    indices = list(range(t)) if task_indices is None else [int(i) for i in task_indices]
    if len(indices) != t or len(ys) != t:
        raise WeightspaceError(f"fine-tuning got {t} starts, {len(ys)} data sets and {len(indices)} task indices; "
                               "pass one of each per task.")
    batch = min([cfg.batch_size, *[len(y) for y in ys]])
    stream = _index_streams([len(y) for y in ys], batch, steps, seed, indices)
    opt = _optimizer(cfg, params, names)
    module = arch.module()
    forward = vmap(lambda p, xb: functional_call(module, p, (xb,)))
    grid = sorted({0, steps, *keep, *(record_at if test else ()),
                   *(range(0, steps + 1, eval_every) if eval_every > 0 and test else ())})
    run = FinetuneRun(grid=torch.tensor(grid), test_acc=torch.zeros(t, len(grid)), examples_per_step=batch)

    def record(step: int) -> None:
        current = {n: p.detach().clone() for n, p in zip(names, params)}
        if step in keep:
            run.snapshots[step] = current
        if test is not None:
            run.test_acc[:, grid.index(step)] = accuracy_per_member(arch, current, *test)

    def step_loss(step: int) -> torch.Tensor:  # step 0-based: examples of step + 1
        idx = stream[:, step * batch: (step + 1) * batch]
        xb = torch.stack([x[i] for x, i in zip(xs, idx)])
        yb = torch.stack([y[i] for y, i in zip(ys, idx)])
        logits = forward(dict(zip(names, params)), xb)  # (T, B, classes)
        return F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="sum") / batch

    record(0)
    run.train_seconds = train(TrainState(params, opt), step_loss, steps, progress=progress,
                              after_step=lambda done: record(done) if done in grid else None).seconds
    return run


def seconds_per_step(arch: Architecture, init: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                     cfg: FinetuneConfig, steps: int = 30, seed: int = 0) -> float:
    """Wall seconds per fine-tuning step for ONE task alone: what a user with a new task pays."""
    one = {n: v.unsqueeze(0) for n, v in init.items()}
    finetune(arch, one, [x], [y], cfg, 3, seed=seed)  # warm-up: first calls pay one-off setup
    run = finetune(arch, one, [x], [y], cfg, steps, seed=seed)
    return run.train_seconds / max(steps, 1)
