"""Weights on demand: encode the user's task, sample, check every candidate, keep the best.

``generate_weights`` is what the CLI and the server call. Candidates come out of
``Generator.sample`` already checked against the WeightSpec (names, shapes, finite values);
here each is also run on the support set and must beat the best constant guess (predicting the
support set's most frequent label). With ``best_of`` > 1, n * best_of candidates are drawn and
the n with the lowest support-set loss are kept. If fewer than n pass, nothing is returned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from weightspace.encode.condition import check_support, support_of
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


def weights_metadata(generator: str, n: int, seed: int, arch: Architecture, source: str,
                     support_accuracy: list[float] | None) -> dict[str, str]:
    """The safetensors header metadata of generated weights (``weightspace generate``, the server)."""
    meta = {"format": "weightspace-generated", "generator": generator, "members": str(n), "seed": str(seed),
            "arch": json.dumps(arch.to_dict()), "source": source}
    if support_accuracy is not None:
        meta["support_accuracy"] = json.dumps([round(a, 4) for a in support_accuracy])
    return meta


def generate_weights(generator: Generator, task_or_support: Task | tuple[torch.Tensor, torch.Tensor], n: int = 1,
                     seed: int = 0, best_of: int = 1, deterministic: bool = False) -> Generated:
    if n < 1 or best_of < 1:
        raise WeightspaceError(f"-n and --best-of must be at least 1, got n={n}, best_of={best_of}.")
    arch = generator.arch
    x, y = check_support(*support_of(task_or_support), arch.input_shape, arch.n_classes)
    cond = generator.encode_condition(task_or_support if isinstance(task_or_support, Task) else (x, y))
    return select(generator, cond, x, y, n, seed, best_of, deterministic)


def select(generator: Generator, cond: torch.Tensor, x: torch.Tensor, y: torch.Tensor, n: int, seed: int = 0,
           best_of: int = 1, deterministic: bool = False, larger: str = "--best-of with a larger value") -> Generated:
    """n models for ``cond``: every candidate scored on the support set (x, y), those beating the
    constant guess kept, best support loss first. ``larger``: how the caller's user raises best_of."""
    draws = n if deterministic else n * best_of
    cands = generator.sample(cond, draws, seed=seed, deterministic=deterministic)
    acc, loss = support_scores(generator.arch, cands, x, y)
    ok = (acc > chance_accuracy(y)) & torch.isfinite(loss)
    if int(ok.sum()) < n:
        raise WeightspaceError(
            f"only {int(ok.sum())} of {draws} generated models beat the constant guess on the support set "
            f"(best accuracy {float(acc.max()):.2f}); this task is likely too far from the zoo's — "
            f"try {larger}, or build a zoo that covers such tasks."
        )
    loss = torch.where(ok, loss, torch.full_like(loss, float("inf")))
    keep = loss.argsort()[:n]
    return Generated({k: v[keep].contiguous() for k, v in cands.items()}, acc[keep], loss[keep], draws, int(ok.sum()))
