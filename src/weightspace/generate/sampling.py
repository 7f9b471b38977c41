"""Weights on demand: encode the user's task, sample, check every candidate, keep the best.

``generate_weights`` is what the CLI and the server call. Candidates come out of
``Generator.sample`` already checked against the WeightSpec (names, shapes, finite values);
here each is also run on the support set and must beat the best constant guess (predicting the
support set's most frequent label). With ``best_of`` > 1, n * best_of candidates are drawn and
the n with the lowest support-set loss are kept. If fewer than n pass, nothing is returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weightspace.encode.condition import check_support
from weightspace.encode.functional import members_loss
from weightspace.errors import WeightspaceError
from weightspace.generate.base import Generator
from weightspace.nets.base import Architecture
from weightspace.tasks.base import Task


@dataclass
class Generated:
    params: dict[str, torch.Tensor]  # stacked (n, ...), best support loss first
    support_accuracy: torch.Tensor  # (n,)
    support_loss: torch.Tensor  # (n,)
    candidates: int  # how many were drawn
    passed: int  # how many passed the checks


@torch.no_grad()
def support_scores(arch: Architecture, stacked: dict[str, torch.Tensor], x: torch.Tensor,
                   y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Accuracy (n,) and mean cross-entropy (n,) of n stacked members on one labelled set."""
    ce, correct = members_loss(arch.module(), stacked, x, y)
    return correct.float().mean(1), ce.mean(1)


def chance_accuracy(y: torch.Tensor) -> float:
    """Accuracy of always predicting the most frequent label."""
    return float(torch.bincount(y).max()) / len(y)


def generate_weights(generator: Generator, task_or_support: Task | tuple[torch.Tensor, torch.Tensor], n: int = 1,
                     seed: int = 0, best_of: int = 1, deterministic: bool = False) -> Generated:
    if n < 1 or best_of < 1:
        raise WeightspaceError(f"-n and --best-of must be at least 1, got n={n}, best_of={best_of}.")
    arch = generator.arch
    if isinstance(task_or_support, Task):
        x, y = task_or_support.support_x, task_or_support.support_y
    else:
        x, y = task_or_support
    x, y = check_support(x, y, arch.input_shape, arch.n_classes)
    cond = generator.encode_condition(task_or_support if isinstance(task_or_support, Task) else (x, y))
    draws = n if deterministic else n * best_of
    cands = generator.sample(cond, draws, seed=seed, deterministic=deterministic)
    acc, loss = support_scores(arch, cands, x, y)
    ok = (acc > chance_accuracy(y)) & torch.isfinite(loss)
    if int(ok.sum()) < n:
        raise WeightspaceError(
            f"only {int(ok.sum())} of {draws} generated models beat the constant guess on the support set "
            f"(best accuracy {float(acc.max()):.2f}); this task is likely too far from the zoo's — "
            "try --best-of with a larger value, or build a zoo that covers such tasks."
        )
    loss = torch.where(ok, loss, torch.full_like(loss, float("inf")))
    keep = loss.argsort()[:n]
    return Generated({k: v[keep].contiguous() for k, v in cands.items()}, acc[keep], loss[keep], draws, int(ok.sum()))
