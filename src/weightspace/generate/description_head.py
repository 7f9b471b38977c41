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
"""

from __future__ import annotations

import torch
from torch import nn

from weightspace.adapt.multitask import head_names
from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture

# logit = SCALE * (cos - 0.1): the zero-shot threshold measured on WordNet zoo tasks was 0.12.
START_SCALE, START_THRESHOLD = 10.0, 0.1


class DescriptionHead(nn.Module):
    def __init__(self, arch: Architecture, cond_dim: int, frame: tuple[torch.Tensor, torch.Tensor] | None):
        super().__init__()
        if arch.n_classes != 2 or arch.features_dim is None:
            raise WeightspaceError(f"hypernet head=description writes a binary head on features; {arch.name} networks "
                                   f"here have {arch.n_classes} classes and features_dim {arch.features_dim}.")
        self.weight_name, self.bias_name = head_names(arch)
        dim = arch.features_dim
        if frame is not None and (frame[0].shape != (dim,) or cond_dim != dim):
            frame = None  # the condition does not live in the features' space: start from v = 0
        self.A = nn.Parameter(torch.diag(frame[1]) if frame is not None else torch.zeros(dim, cond_dim))
        self.m = nn.Parameter(frame[0].clone() if frame is not None else torch.zeros(dim))
        self.scale = nn.Parameter(torch.tensor(START_SCALE))
        self.offset = nn.Parameter(torch.tensor(-START_SCALE * START_THRESHOLD))

    def forward(self, params: dict[str, torch.Tensor], cond: torch.Tensor) -> dict[str, torch.Tensor]:
        """``params`` (stacked over B conditions) with the head replaced by the one ``cond`` (B, C) writes."""
        half = 0.5 * self.scale * (cond @ self.A.T + self.m)  # (B, F): class 1 gets +half, class 0 -half
        bias = 0.5 * self.offset * torch.tensor([-1.0, 1.0])
        return {**params, self.weight_name: torch.stack([-half, half], dim=1),
                self.bias_name: bias.expand(cond.shape[0], 2)}
