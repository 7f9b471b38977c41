"""Novelty: is a generated model new, or a zoo member in disguise?

Two views, both measured against every zoo member:

- Function: the intersection-over-union of misclassified test examples. A copy of a zoo member
  (even a noisy or permuted one) makes the same mistakes, so its highest IoU is close to 1; a
  model that learned the task differently errs elsewhere. Two error-free models count as
  identical (IoU 1): nothing tells them apart.
- Weights: the L2 distance to the nearest zoo member *after alignment*, read beside the typical
  distance between zoo neighbours. Without alignment a permuted copy of a member looks far away.

Alignment strategy: the zoo is first put in one common frame (barycentre alignment); a new model
is matched to the frame's mean, its nearest ``refine`` members in that frame are found with one
vectorised distance computation, and each of those is re-matched pairwise with weight matching,
the smallest distance winning. Zoo members are measured the same way against each other, so
both numbers share one definition.
"""

from __future__ import annotations

from typing import Mapping

import torch

from weightspace.spec import WeightSpec
from weightspace.symmetry.permute import apply_permutation
from weightspace.symmetry.weight_matching import match_weights

Params = Mapping[str, torch.Tensor]


def error_iou(errors: torch.Tensor, zoo_errors: torch.Tensor) -> torch.Tensor:
    """IoU ``(K, M)`` between boolean error sets ``(K, N)`` and zoo error sets ``(M, N)``."""
    a, b = errors.float(), zoo_errors.float()
    inter = a @ b.T
    union = a.sum(1, keepdim=True) + b.sum(1) - inter
    iou = inter / union.clamp_min(1.0)
    return torch.where(union > 0, iou, torch.ones_like(iou))


def error_iou_max(errors: torch.Tensor, zoo_errors: torch.Tensor) -> torch.Tensor:
    """For each of K models, the highest error-set IoU with any zoo member: ``(K,)``."""
    return error_iou(errors, zoo_errors).max(1).values


class AlignedNeighbours:
    """Aligned L2 distance from models to their nearest zoo member, batched over models.

    ``aligned`` is the zoo already in a common frame (``align_zoo`` output, or the raw zoo for
    shared-init zoos whose members share a basin).
    """

    def __init__(self, spec: WeightSpec, aligned: Params, refine: int = 3, seed: int = 0):
        self.spec, self.refine, self.seed = spec, max(1, refine), seed
        self.aligned = {n: aligned[n].float() for n in spec.names}
        self.flat = spec.flatten_stacked(self.aligned)
        self.anchor = spec.unflatten(self.flat.mean(0))

    def __len__(self) -> int:
        return self.flat.shape[0]

    def _refined(self, framed: torch.Tensor, candidates: torch.Tensor, coarse: torch.Tensor,
                 chunk: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
        """Re-match each model (rows of ``framed``) to each of its candidate members, pairwise."""
        if framed.shape[0] == 0:
            return torch.zeros(0), torch.zeros(0, dtype=torch.long)
        parts = [self._refined_chunk(framed[a:a + chunk], candidates[a:a + chunk], coarse[a:a + chunk])
                 for a in range(0, framed.shape[0], chunk)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _refined_chunk(self, framed, candidates, coarse):
        k_models, k = candidates.shape
        params = self.spec.unflatten(framed.repeat_interleave(k, 0))
        reference = self.spec.unflatten(self.flat[candidates.reshape(-1)])
        perms = match_weights(self.spec, reference, params, reference_stacked=True, seed=self.seed)
        moved = self.spec.flatten_stacked(apply_permutation(params, self.spec, perms, stacked=True))
        fine = (moved - self.spec.flatten_stacked(reference)).norm(dim=1).view(k_models, k)
        # Matching to the member itself can only help; the frame distance stays an upper bound.
        best, at = torch.minimum(fine, coarse).min(1)
        return best, candidates.gather(1, at[:, None]).squeeze(1)

    def distances(self, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        """(aligned L2 distance (K,), index of the nearest member (K,)) for stacked models."""
        params = {n: params[n].float() for n in self.spec.names}
        perms = match_weights(self.spec, self.anchor, params, seed=self.seed)
        framed = self.spec.flatten_stacked(apply_permutation(params, self.spec, perms, stacked=True))
        dist = torch.cdist(framed.double(), self.flat.double()).float()
        coarse, candidates = dist.topk(min(self.refine, len(self)), dim=1, largest=False)
        return self._refined(framed, candidates, coarse)

    def zoo_nn_distances(self) -> torch.Tensor:
        """Each member's aligned distance to its nearest *other* member: ``(M,)``."""
        m = len(self)
        if m < 2:
            return torch.zeros(0)
        dist = torch.cdist(self.flat.double(), self.flat.double()).float()
        dist.fill_diagonal_(float("inf"))
        coarse, candidates = dist.topk(min(self.refine, m - 1), dim=1, largest=False)
        return self._refined(self.flat, candidates, coarse)[0]
