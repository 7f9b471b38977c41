"""Descriptor condition: the family's numeric task description, standardised over the zoo."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from weightspace.encode.condition import ConditionEncoder, register_condition
from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture
from weightspace.tasks.base import Task


@register_condition("descriptor", pretty="task descriptor (oracle)",
                    paper="task-conditioned hypernetworks on a task embedding (von Oswald et al. 2020)")
class DescriptorEncoder(ConditionEncoder):
    """(features - mean) / std, features from ``family.descriptor_features(task_id)``.

    The family's featurisation is used when it has one (an angle becomes sin/cos, so 359° sits
    next to 1°); otherwise the raw ``Task.descriptor``. The family's dict is saved with the
    encoder so a loaded generator can featurise a task id on its own.
    """

    kind = "descriptor"

    def __init__(self, family: Any = None, family_dict: Mapping | None = None,
                 mean: torch.Tensor | None = None, std: torch.Tensor | None = None):
        self._family = family
        self.family_dict = dict(family_dict) if family_dict is not None else (family.to_dict() if family is not None else None)
        self.mean, self.std = mean, std
        self.dim = 0 if mean is None else int(mean.shape[0])

    @classmethod
    def create(cls, arch: Architecture, family: Any = None) -> "DescriptorEncoder":
        return cls(family=family)

    @property
    def family(self):
        if self._family is None and self.family_dict is not None:
            from weightspace.tasks import family_from_dict  # tasks/ builds the family from its recorded dict

            self._family = family_from_dict(self.family_dict)
        return self._family

    def features(self, task: Task | str) -> torch.Tensor:
        task_id = task if isinstance(task, str) else task.task_id
        fam = self.family
        if fam is not None and hasattr(fam, "descriptor_features"):
            feats = fam.descriptor_features(task_id)
        elif isinstance(task, Task):
            feats = task.descriptor
        else:
            raise WeightspaceError(f"cannot describe task {task_id!r}: this descriptor encoder has no task family.")
        return torch.as_tensor(feats, dtype=torch.float32).reshape(-1)

    def fit(self, arch, params, tasks: Sequence[Task], family: Any = None) -> "DescriptorEncoder":
        if family is not None:
            self._family, self.family_dict = family, family.to_dict()
        feats = torch.stack([self.features(t) for t in tasks])
        self.mean, self.std = feats.mean(0), feats.std(0, unbiased=False).clamp_min(1e-6)
        self.dim = feats.shape[1]
        return self

    def encode(self, task_or_id) -> torch.Tensor:
        if self.mean is None:
            raise WeightspaceError("the descriptor encoder is not fitted; fit the generator on a zoo first.")
        if isinstance(task_or_id, tuple):
            raise WeightspaceError(
                "this generator is conditioned on task descriptors, not support sets; pass a task id (--task) instead."
            )
        f = self.features(task_or_id)
        if f.shape[0] != self.dim:
            raise WeightspaceError(f"task descriptor has {f.shape[0]} features, the generator was fitted on {self.dim}.")
        return (f - self.mean) / self.std

    def encode_descriptor(self, values: Sequence[float]) -> torch.Tensor:
        """(dim,) condition of a raw descriptor, e.g. an angle that no task of the family has."""
        if self.mean is None:
            raise WeightspaceError("the descriptor encoder is not fitted; fit the generator on a zoo first.")
        fam = self.family
        if fam is None or not hasattr(fam, "descriptor_features_of"):
            raise WeightspaceError("this descriptor encoder records no task family, so it cannot featurise a raw descriptor; use a task id.")
        f = torch.as_tensor(fam.descriptor_features_of(values), dtype=torch.float32).reshape(-1)
        if f.shape[0] != self.dim:
            raise WeightspaceError(f"task descriptor has {f.shape[0]} features, the generator was fitted on {self.dim}.")
        return (f - self.mean) / self.std

    def config(self) -> dict:
        return {"name": self.name, "dim": self.dim, "family": self.family_dict}

    def state(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, config: Mapping, state: Mapping[str, torch.Tensor]) -> "DescriptorEncoder":
        return cls(family_dict=config.get("family"), mean=state["mean"], std=state["std"])
