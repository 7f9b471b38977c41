"""The few-shot objective: train generated weights for the way a user will use them.

When a task's head is refitted on the user's support set (``+head`` modes; LoRA), what the
generator must get right is the representation, not the head. This objective says so: each step
draws an episode per zoo task (a class-balanced support set and a disjoint query set from its
training data), tells the generator about that support set, and scores the generated weights by a
prototype classifier built from the support set's features (Snell et al. 2017, "Prototypical
Networks", with cosine similarity) on the query set. The generated head is not used.
"""

from __future__ import annotations

import torch
from torch import nn

from weightspace.encode.functional import forward_members
from weightspace.errors import WeightspaceError
from weightspace.generate.taskdata import TaskBank

# Cosine logits need a scale to express confidence. Learned jointly in our chatterbot runs it
# settled between 10 and 12 from 10, so it is fixed here rather than carried in the generator.
COSINE_SCALE = 10.0


def check_features(arch) -> None:
    if arch.features_dim is None:
        raise WeightspaceError(
            f"the fewshot objective scores the features a refitted head reads, which {arch.name} networks do not "
            "expose; use objective=task or regression."
        )


def episode(tasks: TaskBank, members: torch.Tensor, query: int, g: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Support (B, S, ...) and disjoint query (B, Q, ...) sets, both class-balanced, per member.

    One balanced draw of S + Q examples, split after S: the draw takes every class's first
    example, then every class's second, ..., so both parts stay balanced."""
    s = tasks.support_size
    q = min(query, int(tasks.n.min()) - s)
    if q < tasks.n_classes:
        raise WeightspaceError(f"the fewshot objective needs a query set beside the {s}-example support set; "
                               f"the smallest zoo task has only {int(tasks.n.min())} training examples.")
    x, y = tasks.support(members, g, size=s + q)
    return x[:, :s], y[:, :s], x[:, s:], y[:, s:]


def prototype_loss(arch, module: nn.Module, weights: dict[str, torch.Tensor], support_x: torch.Tensor,
                   support_y: torch.Tensor, query_x: torch.Tensor, query_y: torch.Tensor) -> torch.Tensor:
    """Mean query cross-entropy of each member's cosine prototype classifier (differentiable)."""
    s, n_classes = support_y.shape[1], arch.n_classes
    x = arch.compact_inputs(torch.cat([support_x, query_x], 1))
    feats = forward_members(module, weights, x, per_member=True, features=True)
    onehot = nn.functional.one_hot(support_y, n_classes).float()  # (B, S, C)
    protos = onehot.transpose(1, 2) @ feats[:, :s] / onehot.sum(1)[..., None].clamp_min(1.0)  # (B, C, d)
    cosine = nn.functional.normalize(feats[:, s:], dim=-1) @ nn.functional.normalize(protos, dim=-1).transpose(1, 2)
    logits = COSINE_SCALE * cosine  # (B, Q, C)
    return nn.functional.cross_entropy(logits.reshape(-1, n_classes), query_y.reshape(-1))
