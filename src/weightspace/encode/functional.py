"""Run many members' weights through one architecture at once (torch.func, vmapped)."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
from torch.func import functional_call, vmap


def forward_members(module: nn.Module, stacked: Mapping[str, torch.Tensor], x: torch.Tensor,
                    per_member: bool = False, features: bool = False) -> torch.Tensor:
    """Logits (M, N, classes) of M stacked members on inputs x.

    x is (N, *input) shared by all members, or (M, N, *input) with ``per_member=True``.
    Differentiable in both weights and inputs, so end-to-end training goes through it.
    ``features=True`` returns what the head reads instead, (M, N, arch.features_dim), for
    architectures that have one (their module's forward takes ``features``).
    """
    kwargs = {"features": True} if features else {}

    def one(p, xi):
        return functional_call(module, p, (xi,), kwargs)

    return vmap(one, in_dims=(0, 0 if per_member else None))(dict(stacked), x)


def members_loss(module: nn.Module, stacked: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                 per_member: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example cross-entropy (M, N) and correctness (M, N) of stacked members."""
    logits = forward_members(module, stacked, x, per_member)
    m, n, c = logits.shape
    yy = y.expand(m, n) if not per_member else y
    ce = nn.functional.cross_entropy(logits.reshape(m * n, c), yy.reshape(-1), reduction="none").reshape(m, n)
    return ce, logits.argmax(-1) == yy
