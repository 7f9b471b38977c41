"""Fine-tuning as evaluated methods: from a start (the best zoo member, or a generator's output)
on the support set or on the full training set, for k steps and "until converged".

"Until converged" is the zoo's own training budget (the steps that trained every member from
scratch), unless ``budget`` says otherwise. All held-out tasks fine-tune together in one batched
run per (start, data), or in chunks on a worker pool (distributed.py: same results up to float
rounding); either way a task's seconds are charged as if it ran alone: the start's own seconds
plus k x the measured seconds of one single-task step.

``tuned_finetune_method`` adds fine-tuning on the support set as a careful user runs it: its
learning rate and steps chosen per task by k-fold cross-validation on the support set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weightspace.adapt.finetune import FinetuneConfig, seconds_per_step
from weightspace.adapt.tuned_finetune import DEFAULT_LR_SCALES, DEFAULT_STEPS
from weightspace.evaluate.context import ZooContext
from weightspace.evaluate.cost import training_flops
from weightspace.evaluate.distributed import DATA, FinetuneJob, finetune_tasks, task_data, tuned_finetune_tasks
from weightspace.evaluate.methods import Method
from weightspace.spec import stack_members


@dataclass
class CVGrid:
    """What cross-validated fine-tuning may choose from: ``steps`` up to ``max_steps`` (the budget), and the budget."""

    folds: int = 4
    lr_scales: tuple[float, ...] = DEFAULT_LR_SCALES
    steps: tuple[int, ...] = DEFAULT_STEPS
    max_steps: int | None = None  # None: no budget


@dataclass
class Curve:
    grid: list[int]
    acc: list[list[float]]  # per task, test accuracy at each grid step
    examples_per_step: int  # per task
    batched_seconds_per_task: float  # the batched run's optimisation time / tasks (amortised, for contrast)

    def to_dict(self) -> dict:
        g = torch.tensor(self.acc)
        return {"grid": self.grid, "acc_mean": g.mean(0).tolist(), "acc": self.acc,
                "examples_per_step": self.examples_per_step,
                "batched_seconds_per_task": self.batched_seconds_per_task}


def step_seconds(ctx: ZooContext, cfg: FinetuneConfig, seed: int = 0) -> dict[str, float]:
    """Seconds per single-task step on each data source, measured on the first held-out task."""
    start = ctx.member(0)
    return {d: seconds_per_step(ctx.arch, start, *task_data(ctx.tasks[0], d), cfg, seed=seed) for d in DATA}


def finetune_methods(ctx: ZooContext, start: Method, start_name: str, cfg: FinetuneConfig, steps: list[int],
                     budget: int, eval_every: int, per_step: dict[str, float], seed: int = 0,
                     progress=None, pool=None, slots: int = 0) -> tuple[list[Method], dict[str, Curve]]:
    """Fine-tuned methods from ``start`` for every k in ``steps`` and the budget, on each data source.

    ``pool`` (with ``slots`` chunks at once) spreads the tasks over workers; None runs here.
    """
    keep = sorted(set(steps) | {budget})
    job = FinetuneJob(ctx.arch, ctx.family.to_dict(), ctx.tasks, stack_members(start.weights, ctx.spec), cfg, budget,
                      keep, eval_every, seed)
    runs = finetune_tasks(job, DATA, pool=pool, slots=slots, progress=progress)
    methods, curves = [], {}
    for data in DATA:
        run = runs[data]
        curves[data] = Curve(run.grid.tolist(), run.test_acc.tolist(), run.examples_per_step,
                             run.train_seconds / len(ctx.tasks))
        for k in keep:
            if k == 0 and data != DATA[0]:
                continue  # zero steps is the start itself, whatever the data
            tag = "converged" if k == budget and k not in steps else str(k)
            key = f"finetune:{start_name}@0" if k == 0 else f"finetune:{start_name}:{data}@{tag}"
            label = f"{start.label} + 0 steps" if k == 0 else f"fine-tune {start_name} on {data}, {tag} steps"
            m = Method(key, "finetune", label,
                       f"{start.label}, fine-tuned for {k} steps on the task's {data} set"
                       + (" (the zoo's full training budget)" if k == budget else ""),
                       setup_seconds=start.setup_seconds,
                       info={"start": start.key, "data": data, "steps": k, "converged": k == budget,
                             "examples_per_step": run.examples_per_step})
            if any(f is None for f in start.flops) and k > 0:
                m.info["flops_exclude_start"] = True  # the start's own cost is not computable
            for t in range(len(ctx.tasks)):
                base = start.flops[t]
                fl = training_flops(ctx.n_params, k * run.examples_per_step)
                flops = base if k == 0 else (base or 0.0) + fl
                m.add({n: run.snapshots[k][n][t] for n in ctx.spec.names}, start.seconds[t] + k * per_step[data], flops)
            methods.append(m)
    return methods, curves


def tuned_finetune_method(ctx: ZooContext, start: Method, start_name: str, cfg: FinetuneConfig,
                          grid: CVGrid, per_step: dict[str, float], seed: int = 0, pool=None, slots: int = 0) -> Method:
    """Fine-tuning ``start`` on each task's support set with (lr, steps) chosen by k-fold
    cross-validation on that support set (adapt/tuned_finetune.py); every selection step is
    charged to the task's seconds and FLOPs."""
    # every grid step within the budget, and the budget itself: a subset task from a far zoo start
    # can need the zoo's whole training budget (measured on digits-subsets, 16-task zoo)
    budget = grid.max_steps
    steps = sorted({k for k in grid.steps if budget is None or k <= budget} | ({budget} if budget is not None else set()))
    family = ctx.family.to_dict() if pool is not None else {}  # workers rebuild the tasks from it
    run = tuned_finetune_tasks(ctx.arch, family, ctx.tasks, stack_members(start.weights, ctx.spec), cfg, steps,
                               grid.lr_scales, grid.folds, seed, pool=pool, slots=slots)
    m = Method(f"finetune:{start_name}:support@cv", "finetune", f"fine-tune {start_name} on support, {grid.folds}-fold CV",
               f"{start.label}, fine-tuned on the task's support set with its learning rate ({'/'.join(f'{s:g}' for s in grid.lr_scales)}"
               f" x {cfg.lr:g}) and steps (of {steps}) chosen by {grid.folds}-fold cross-validation on that support set; "
               "the selection's steps are charged to its seconds",
               setup_seconds=start.setup_seconds,
               info={"start": start.key, "data": "support", "steps": "cv", "tuned": True, "folds": grid.folds,
                     "lr_grid": [cfg.lr * s for s in grid.lr_scales], "steps_grid": steps,
                     "chosen": [{"lr": c.lr, "steps": c.steps, "cv_acc": c.cv_acc, "steps_run": c.steps_run}
                                for c in run.choices],
                     "chosen_steps_median": float(torch.tensor([float(c.steps) for c in run.choices]).median()),
                     "examples_per_step": run.examples_per_step})
    for t, c in enumerate(run.choices):
        flops = (start.flops[t] or 0.0) + training_flops(ctx.n_params, c.steps_run * run.examples_per_step)
        m.add({n: run.weights[n][t] for n in ctx.spec.names}, start.seconds[t] + c.steps_run * per_step["support"], flops)
    return m
