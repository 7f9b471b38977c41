"""A 2-D map of weight space for the report: zoo members, held-out references and each
method's weights on the two leading principal axes of the zoo (in its common frame).

Weights from outside the zoo (references, generated models, baselines) are first permuted into
the zoo's frame by weight matching to the zoo's mean, so the map shows function-level
neighbourhoods rather than permutation noise. Shared-start zoos need no matching.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from weightspace.spec import stack_members
from weightspace.symmetry.permute import apply_permutation
from weightspace.symmetry.weight_matching import match_weights


def weight_map(ctx, methods: Sequence, keys: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """Coordinates of the zoo and of the chosen methods' per-task weights on the zoo's PC1/PC2."""
    spec = ctx.spec
    zoo = spec.flatten_stacked(ctx.framed).to(torch.float64)
    mean = zoo.mean(dim=0)
    _, s, vh = torch.linalg.svd(zoo - mean, full_matrices=False)
    axes = vh[:2]
    sign = torch.sign(axes.gather(1, axes.abs().argmax(dim=1, keepdim=True)))
    axes = axes * torch.where(sign == 0, torch.ones_like(sign), sign)
    ratio = (s[:2] ** 2 / (s**2).sum()).tolist() if s.numel() else [0.0, 0.0]
    centre = spec.unflatten(mean.to(torch.float32))

    def project(stacked: dict[str, torch.Tensor]) -> list[list[float]]:
        if ctx.aligned:  # bring outside weights into the zoo's frame before projecting
            perms = match_weights(spec, centre, stacked, seed=seed)
            stacked = apply_permutation(stacked, spec, perms, stacked=True)
        flat = spec.flatten_stacked(stacked).to(torch.float64) - mean
        return (flat @ axes.T).tolist()

    zoo_xy = ((zoo - mean) @ axes.T).tolist()
    by_key = {m.key: m for m in methods}
    points = {}
    for key in keys:
        m = by_key.get(key)
        if m is not None and m.weights:
            points[key] = project(stack_members(m.weights, spec))
    return {
        "explained_variance": ratio,
        "zoo": {"xy": zoo_xy, "descriptor": ctx.descriptors.tolist(), "task_id": [r.task_id for r in ctx.records]},
        "tasks": [t.task_id for t in ctx.tasks],
        "methods": points,
    }
