"""Multi-layer perceptron: any depth and width; ReLU, tanh or GELU."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from weightspace.nets.base import Architecture, activation
from weightspace.nets.registry import register_arch
from weightspace.spec import PermAxis, PermGroup, TensorSpec, WeightSpec


@register_arch("mlp", pretty="multi-layer perceptron",
               paper="Rumelhart, Hinton & Williams 1986 (learning representations by back-propagating errors); "
                     "Goodfellow, Bengio & Courville 2016, Deep Learning, ch. 6")
@dataclass(frozen=True)
class MLP(Architecture):
    """Layers fc0..fcL; hidden group h{i} couples rows of fc{i} with columns of fc{i+1}."""

    input_shape: tuple[int, ...]
    n_classes: int
    hidden: tuple[int, ...] = (32,)
    activation: str = "relu"

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        activation(self.activation)  # fail early on an unknown activation

    @property
    def widths(self) -> tuple[int, ...]:
        return (math.prod(self.input_shape), *self.hidden, self.n_classes)

    def describe(self) -> str:
        return f"{self.name} {'-'.join(map(str, self.widths))}"

    def spec(self) -> WeightSpec:
        w = self.widths
        tensors, groups = [], []
        for i in range(len(w) - 1):
            tensors += [TensorSpec(f"fc{i}.weight", (w[i + 1], w[i])), TensorSpec(f"fc{i}.bias", (w[i + 1],))]
        for i, size in enumerate(self.hidden):
            groups.append(
                PermGroup(
                    name=f"h{i}",
                    size=size,
                    axes=(
                        PermAxis(f"fc{i}.weight", 0, "out"),
                        PermAxis(f"fc{i}.bias", 0, "out"),
                        PermAxis(f"fc{i + 1}.weight", 1, "in"),
                    ),
                    scale_invariant=self.activation == "relu",
                )
            )
        return WeightSpec(tuple(tensors), tuple(groups), arch=self.name)

    def module(self) -> nn.Module:
        return _MLPModule(self.widths, self.activation)


class _MLPModule(nn.Module):
    def __init__(self, widths, act):
        super().__init__()
        self.n = len(widths) - 1
        for i in range(self.n):
            setattr(self, f"fc{i}", nn.Linear(widths[i], widths[i + 1]))
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for i in range(self.n):
            x = getattr(self, f"fc{i}")(x)
            if i < self.n - 1:
                x = self.act(x)
        return x
