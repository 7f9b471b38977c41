"""The ``none`` condition: every task gets the same code, so a generator is told nothing.

An ablation, not a way to serve tasks: a generator fitted with it produces one distribution of
weights for every task (its central output is a single network). Evaluated beside the same
generator with a real condition, it says how much the condition adds over what training on the
zoo alone gives; a conditional generator that does not beat it has not learned to use the task.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from weightspace.encode.condition import ConditionEncoder, register_condition
from weightspace.nets.base import Architecture
from weightspace.tasks.base import Task


@register_condition("none", pretty="no condition (control)",
                    paper="the told-nothing control: Text-to-LoRA (Charakorn et al. 2025) does about as well from "
                          "random descriptions, so a condition counts only by its margin over this")
class NoCondition(ConditionEncoder):
    kind = "none"
    dim = 1  # one constant entry: generators take a (B, C) input with C >= 1

    @classmethod
    def create(cls, arch: Architecture, **_: Any) -> "NoCondition":
        return cls()

    def fit(self, arch, params, tasks: Sequence[Task], family: Any = None) -> "NoCondition":
        return self

    def encode(self, task_or_support: Any = None) -> torch.Tensor:
        return torch.zeros(self.dim)

    def config(self) -> dict:
        return {"name": self.name}

    def state(self) -> dict[str, torch.Tensor]:
        return {}

    @classmethod
    def from_state(cls, config: Mapping, state: Mapping[str, torch.Tensor]) -> "NoCondition":
        return cls()
