"""A binary head written from the task's description (the hypernet's ``head=description``).

For a binary task on an architecture whose head reads sentence embeddings (LoRA on MiniLM) and a
condition that is a sentence embedding in that same space (the text-description condition), the
head's direction is a learned linear map of the condition, ``v = A c + m``, and the logit of
class 1 over class 0 is ``a <features(x), v> + b``. It starts where ``v`` is the description's
own embedding (``A`` and ``m`` undo the encoder's standardisation): a zero-shot prototype
classifier, cosine to the description as in CLIP-style zero-shot classification (Radford et al.
2021). Meta-training on the family's tasks then bends the map towards what the tasks' labels mean.

Why a structured head rather than the hypernet's own output: the generated head has to place a
new task's decision direction in a 384-dimensional space from a few hundred training tasks built
on 21 supersenses; an MLP output learns the span of those, a linear map that starts at the
identity keeps every direction the frozen embedding already has, so supersenses no zoo task used
keep their zero-shot direction. Measured on frozen embeddings of the WordNet family's 32 held-out
tasks (benchmarks/RESULTS.md): zero-shot cosine 0.70, the meta-trained map 0.80.

Which coordinates the map is learned in matters (``mapping``). ``raw``: ``v = e + M e`` on the
description's own embedding ``e`` (the condition with the encoder's standardisation undone), ``M``
from zero. ``standardised``: ``v = A c + m`` on the standardised condition ``c``, ``A`` from
``diag(std)`` and ``m`` from the mean: the same maps, but Adam's steps are per coordinate, and in
standardised coordinates the description embeddings' low-variance directions move as fast as the
rest. On frozen embeddings of the WordNet held-out tasks (same 256 training tasks and 600 steps),
``raw`` scores 0.791 and ``standardised`` 0.726 and 0.743 (two seeds), with 0.753 against
0.658 and 0.699 on supersenses no training task used (RESULTS.md, session 12). ``standardised`` is
kept for generators saved before ``raw`` existed. A condition that is not an embedding in the
features' space has no ``e``: its map ``v = A c + m`` starts from v = 0 either way.
"""

from __future__ import annotations

import torch
from torch import nn

from weightspace.adapt.multitask import head_names
from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture

# logit = SCALE * (cos - 0.1): the zero-shot threshold measured on WordNet zoo tasks was 0.12.
START_SCALE, START_THRESHOLD = 10.0, 0.1


MAPPINGS = ("raw", "standardised")


class DescriptionHead(nn.Module):
    def __init__(self, arch: Architecture, cond_dim: int, frame: tuple[torch.Tensor, torch.Tensor] | None,
                 mapping: str = "raw"):
        super().__init__()
        if arch.n_classes != 2 or arch.features_dim is None:
            raise WeightspaceError(f"hypernet head=description writes a binary head on features; {arch.name} networks "
                                   f"here have {arch.n_classes} classes and features_dim {arch.features_dim}.")
        if mapping not in MAPPINGS:
            raise WeightspaceError(f"unknown description head mapping {mapping!r}; choose among {', '.join(MAPPINGS)}.")
        self.weight_name, self.bias_name = head_names(arch)
        dim = arch.features_dim
        if frame is not None and (frame[0].shape != (dim,) or cond_dim != dim):
            frame = None  # the condition does not live in the features' space: start from v = 0
        self.mapping = mapping if frame is not None else "standardised"
        if self.mapping == "raw":
            self.register_buffer("mean", frame[0].clone())
            self.register_buffer("std", frame[1].clone())
            self.M = nn.Parameter(torch.zeros(dim, dim))
        else:
            self.A = nn.Parameter(torch.diag(frame[1]) if frame is not None else torch.zeros(dim, cond_dim))
            self.m = nn.Parameter(frame[0].clone() if frame is not None else torch.zeros(dim))
        self.scale = nn.Parameter(torch.tensor(START_SCALE))
        self.offset = nn.Parameter(torch.tensor(-START_SCALE * START_THRESHOLD))

    @classmethod
    def for_state(cls, arch: Architecture, cond_dim: int, state: dict[str, torch.Tensor]) -> "DescriptionHead":
        """An empty head shaped for a saved ``state_dict`` (its keys say the mapping), loaded from it."""
        raw = "M" in state
        frame = (torch.zeros(arch.features_dim), torch.ones(arch.features_dim)) if raw else None
        head = cls(arch, cond_dim, frame, "raw" if raw else "standardised")
        head.load_state_dict(state, strict=True)
        return head

    def direction(self, cond: torch.Tensor) -> torch.Tensor:
        """v (B, F) for conditions (B, C)."""
        if self.mapping == "raw":
            e = cond * self.std + self.mean  # the description's own embedding
            return e + e @ self.M.T
        return cond @ self.A.T + self.m

    def forward(self, params: dict[str, torch.Tensor], cond: torch.Tensor) -> dict[str, torch.Tensor]:
        """``params`` (stacked over B conditions) with the head replaced by the one ``cond`` (B, C) writes."""
        half = 0.5 * self.scale * self.direction(cond)  # (B, F): class 1 gets +half, class 0 -half
        bias = 0.5 * self.offset * torch.tensor([-1.0, 1.0])
        return {**params, self.weight_name: torch.stack([-half, half], dim=1),
                self.bias_name: bias.expand(cond.shape[0], 2)}
