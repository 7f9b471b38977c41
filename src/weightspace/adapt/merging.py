"""Merging a whole zoo: one common frame, and its mean (the "zoo soup").

Members trained from independent initialisations sit in different permutations of the same
solutions, so they are first aligned to their barycentre (weight matching to a mean that is
recomputed a few times). Members fine-tuned from one shared start already share a frame and are
used as they are. An architecture whose symmetry has a closed-form canonical form (LoRA's A/B
gauge: ``arch.low_rank_pairs()``, see symmetry.canonical.canonical_frame) is put in that frame
instead of searched for one.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch

from weightspace.spec import WeightSpec
from weightspace.symmetry.align_zoo import align_zoo
from weightspace.symmetry.canonical import canonical_frame


def needs_alignment(inits: Sequence[str]) -> bool:
    """True unless every member started from one shared set of weights (``init`` "shared:<sha>")."""
    return not (inits and all(i.startswith("shared:") for i in inits) and len(set(inits)) == 1)


def common_frame(spec: WeightSpec, stacked: Mapping[str, torch.Tensor], align: bool, iters: int = 3,
                 seed: int = 0, progress: Callable[[int, int], None] | None = None,
                 arch=None) -> dict[str, torch.Tensor]:
    """The zoo in one frame when ``align`` (the arch's closed-form canonical frame if it declares one, else
    barycentre alignment), else unchanged."""
    if not align:
        return {n: stacked[n] for n in spec.names}
    framed = canonical_frame(arch, {n: stacked[n] for n in spec.names})
    if framed is not None:
        if progress is not None:
            progress(1, 1)
        return framed
    return align_zoo(spec, stacked, reference=None, iters=iters, seed=seed, progress=progress)[0]


def zoo_mean(stacked: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The member-wise mean of a (framed) zoo."""
    return {n: v.mean(0) for n, v in stacked.items()}
