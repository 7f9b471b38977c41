"""Interpolation of two zoo members after alignment: the "simple interpolation" that published
weight generators were found to reproduce, here as an explicit baseline.

The second member is permuted onto the first with weight matching before mixing, so that hidden
unit j means the same thing in both; averaging unaligned networks mixes unrelated units and
lands in a high-loss region, which would make the baseline unfairly weak.
"""

from __future__ import annotations

from typing import Mapping

import torch

from weightspace.spec import WeightSpec
from weightspace.symmetry.permute import apply_permutation
from weightspace.symmetry.weight_matching import weight_matching


def aligned_interpolation(spec: WeightSpec, first: Mapping[str, torch.Tensor], second: Mapping[str, torch.Tensor],
                          alpha: float = 0.5, seed: int = 0) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * first + alpha * P(second)`` with P the weight-matching permutation."""
    perms = weight_matching(spec, first, second, seed=seed)
    moved = apply_permutation(second, spec, perms)
    return {n: (1 - alpha) * first[n] + alpha * moved[n] for n in spec.names}
