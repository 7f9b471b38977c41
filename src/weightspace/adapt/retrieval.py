"""Retrieval: answer a new task with the zoo member whose task looks nearest.

The honest version judges "nearest" from what a user actually has, the task's labelled support
set: the member with the lowest support-set loss wins. The descriptor-nearest member (closest
task descriptor, e.g. rotation angle) needs knowledge a user may not have, so it is reported as
an *oracle* line, never as the retrieval baseline.
"""

from __future__ import annotations

from typing import Mapping

import torch

from weightspace.nets.predict import predict_members
from weightspace.nets.base import Architecture
from weightspace.tasks.base import Task


def support_losses(arch: Architecture, zoo_params: Mapping[str, torch.Tensor], task: Task) -> torch.Tensor:
    """Mean cross-entropy ``(M,)`` of every zoo member on the task's support set."""
    return predict_members(arch, zoo_params, task.support_x, task.support_y)[1]


def nearest_by_support(losses: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Indices of the ``k`` members with the lowest support loss, best first."""
    return losses.topk(min(k, losses.numel()), largest=False).indices


def nearest_by_descriptor(zoo_descriptors: torch.Tensor, descriptor: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Indices of the ``k`` members whose task descriptor is closest (Euclidean), best first."""
    dist = (zoo_descriptors.double() - descriptor.double()).norm(dim=1)
    return dist.topk(min(k, dist.numel()), largest=False).indices
