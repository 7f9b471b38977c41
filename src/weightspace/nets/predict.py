"""Predictions of many members at once: the one forward pass every metric here is built on.

Accuracy alone is not enough for evaluation: novelty compares *which* test examples a model
gets wrong, so this module returns predicted labels (and the mean cross-entropy, which
retrieval ranks zoo members by). Members run together under ``torch.func.vmap``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from weightspace.nets.base import Architecture

Params = Mapping[str, torch.Tensor]


def _members(params: Params) -> int:
    return next(iter(params.values())).shape[0]


@torch.no_grad()
def predict_members(arch: Architecture, params: Params, x: torch.Tensor, y: torch.Tensor,
                    batch: int = 2048, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted labels ``(M, N)`` and mean cross-entropy ``(M,)`` of stacked members on shared data.

    ``batch`` bounds examples per forward pass and ``chunk`` members per vmap call, so memory
    stays at about chunk x batch x widest layer whatever the zoo size.
    """
    module = arch.module()
    run = vmap(lambda p, xb: functional_call(module, p, (xb,)), in_dims=(0, None))
    m, n = _members(params), x.shape[0]
    preds = torch.empty(m, n, dtype=torch.long)
    loss = torch.zeros(m, dtype=torch.float64)
    for a in range(0, m, chunk):
        part = {k: v[a:a + chunk] for k, v in params.items()}
        for s in range(0, n, batch):
            logits = run(part, x[s:s + batch])  # (m', b, classes)
            yb = y[s:s + batch]
            preds[a:a + chunk, s:s + batch] = logits.argmax(-1)
            ce = F.cross_entropy(logits.flatten(0, 1), yb.repeat(logits.shape[0]), reduction="none")
            loss[a:a + chunk] += ce.view(logits.shape[0], -1).sum(1).double()
    return preds, (loss / max(n, 1)).float()


@torch.no_grad()
def accuracy_per_member(arch: Architecture, params: Params, xs: Sequence[torch.Tensor],
                        ys: Sequence[torch.Tensor]) -> torch.Tensor:
    """Accuracy ``(M,)`` of member i on its own data ``(xs[i], ys[i])``.

    Same-sized data sets (the usual case inside one family) go through one vmapped pass (pass
    them pre-stacked as ``(M, N, ...)`` tensors to avoid restacking); sets of different sizes
    fall back to one member at a time.
    """
    m = _members(params)
    module = arch.module()
    if isinstance(xs, torch.Tensor) or all(x.shape == xs[0].shape for x in xs):
        x = xs if isinstance(xs, torch.Tensor) else torch.stack(list(xs))
        y = ys if isinstance(ys, torch.Tensor) else torch.stack(list(ys))
        logits = vmap(lambda p, xb: functional_call(module, p, (xb,)))(dict(params), x)
        return (logits.argmax(-1) == y).float().mean(1)
    out = torch.empty(m)
    for i in range(m):
        logits = functional_call(module, {k: v[i] for k, v in params.items()}, (xs[i],))
        out[i] = (logits.argmax(-1) == ys[i]).float().mean()
    return out
