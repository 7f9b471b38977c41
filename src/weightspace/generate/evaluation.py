"""Quick held-out numbers for a generator's card and the generation benchmarks.

The full, honest comparison (fine-tuning, memorization baselines, novelty) lives in
weightspace.evaluate; these are the few numbers `weightspace train` prints and records:
test accuracy of generated weights on the zoo family's held-out tasks (conditioned exactly as a
user would condition them: on the task's support set or descriptor), beside the reference
models the zoo trained on those tasks and beside retrieval of the best zoo member.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from weightspace.adapt.head_refit import fit_head
from weightspace.generate.base import Generator
from weightspace.generate.sampling import generate_weights, support_scores
from weightspace.nets.base import Architecture
from weightspace.tasks.base import Task


def test_accuracy(arch: Architecture, stacked: Mapping[str, torch.Tensor], task: Task) -> torch.Tensor:
    """(n,) test accuracy of n stacked members on one task."""
    return support_scores(arch, dict(stacked), task.x_test, task.y_test)[0]


@torch.no_grad()
def generated_accuracy(gen: Generator, tasks: Sequence[Task], seed: int = 0, deterministic: bool = True,
                       n: int = 1, best_of: int = 1) -> torch.Tensor:
    """(T,) mean test accuracy of n samples per task, each conditioned on that task.

    ``best_of`` > 1 keeps the n best of n * best_of candidates by support-set loss (generate_weights).
    """
    out = []
    for i, t in enumerate(tasks):
        if best_of > 1:
            params = generate_weights(gen, t, n=n, seed=seed + i, best_of=best_of).params
        else:
            params = gen.sample(gen.encode_condition(t), n, seed + i, deterministic)
        out.append(test_accuracy(gen.arch, params, t).mean())
    return torch.stack(out)


@torch.no_grad()
def central_with_head(gen: Generator, task: Task, seed: int = 0) -> dict[str, torch.Tensor]:
    """The generator's central output for ``task`` with its head refitted on the task's support
    set (the ``+head`` mode), for architectures with ``head_refit``: one network, unstacked."""
    params = {k: v[0] for k, v in gen.sample(gen.encode_condition(task), 1, seed, True).items()}
    return fit_head(gen.arch, params, task.support_x, task.support_y)


@torch.no_grad()
def retrieval_accuracy(arch: Architecture, zoo_params: Mapping[str, torch.Tensor], tasks: Sequence[Task]) -> torch.Tensor:
    """(T,) test accuracy of the zoo member with the lowest loss on each task's support set."""
    out = []
    for t in tasks:
        best = int(support_scores(arch, dict(zoo_params), t.support_x, t.support_y)[1].argmin())
        out.append(test_accuracy(arch, {k: v[best:best + 1] for k, v in zoo_params.items()}, t)[0])
    return torch.stack(out)


@torch.no_grad()
def reference_accuracy(zoo, tasks: Sequence[Task]) -> torch.Tensor | None:
    """(T,) test accuracy of the zoo's held-out reference models (mean over seeds), or None."""
    records = zoo.records(final_only=True, split="heldout")
    if not records:
        return None
    params = zoo.load(final_only=True, split="heldout")
    out = []
    for t in tasks:
        rows = [i for i, r in enumerate(records) if r.task_id == t.task_id]
        if not rows:
            return None
        out.append(test_accuracy(zoo.arch, {k: v[rows] for k, v in params.items()}, t).mean())
    return torch.stack(out)


def heldout_summary(gen: Generator, zoo) -> dict:
    """Mean held-out test accuracy of deterministic samples, of references and their ratio."""
    from weightspace.tasks import family_from_dict

    family = family_from_dict(zoo.family)
    tasks = [family.task(t) for t in family.heldout_task_ids()]  # never trained on by zoo members
    if not tasks:
        return {}
    acc = generated_accuracy(gen, tasks)
    ref = reference_accuracy(zoo, tasks)
    out = {"tasks": len(tasks), "generated_acc_mean": float(acc.mean()), "reference_acc_mean": None}
    if gen.arch.head_refit:  # heads are label-specific: how the weights are used
        heads = [test_accuracy(gen.arch, {k: v[None] for k, v in central_with_head(gen, t, i).items()}, t)[0]
                 for i, t in enumerate(tasks)]  # each task's central output with its head refitted
        out["generated_head_acc_mean"] = float(torch.stack(heads).mean())
    if ref is not None:
        out.update(reference_acc_mean=float(ref.mean()), ratio_mean=float((acc / ref).mean()))
    return out


def describe_heldout(summary: dict) -> str:
    """The held-out figures of ``heldout_summary`` as a clause of a one-line report ('' if none)."""
    if not summary:
        return ""
    text = f"; held-out accuracy {summary['generated_acc_mean']:.3f}"
    if summary.get("generated_head_acc_mean") is not None:
        text += f" (head refitted on the support set: {summary['generated_head_acc_mean']:.3f})"
    if summary.get("reference_acc_mean") is not None:
        text += f" vs trained {summary['reference_acc_mean']:.3f}"
    return text
