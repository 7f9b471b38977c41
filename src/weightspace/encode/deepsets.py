"""Learned support-set encoder: DeepSets (Zaheer et al. 2017), trained jointly with a generator.

code = rho( mean_i phi([x_i, onehot(y_i)]) ). Mean pooling makes the code independent of the
order (and, to first order, the number) of examples. The encoder starts random; a generator
that sees ``trainable = True`` trains it through its own loss on support sets drawn afresh
from each zoo task's training data every step, so it generalises to a user's support set.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from weightspace.encode.condition import SupportSetEncoder, register_condition, unique_tasks
from weightspace.encode.modules import mlp, seeded
from weightspace.nets.base import Architecture
from weightspace.tasks.base import Task


class _DeepSets(nn.Module):
    def __init__(self, in_dim: int, n_classes: int, dim: int, hidden: int):
        super().__init__()
        self.n_classes = n_classes
        self.phi = mlp([in_dim + n_classes, hidden, hidden])
        self.rho = mlp([hidden, hidden, dim])
        # input standardisation, fitted on the zoo's support sets
        self.register_buffer("x_mean", torch.zeros(in_dim))
        self.register_buffer("x_std", torch.ones(in_dim))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = (x.flatten(2) - self.x_mean) / self.x_std
        h = self.phi(torch.cat([x, nn.functional.one_hot(y, self.n_classes).float()], dim=-1))
        return self.rho(nn.functional.silu(h).mean(1))


@register_condition("support-deepsets", pretty="DeepSets support-set encoder", paper="DeepSets (Zaheer et al. 2017)")
class DeepSetsSupportEncoder(SupportSetEncoder):
    trainable = True

    def __init__(self, input_shape: Sequence[int], n_classes: int, dim: int = 64, hidden: int = 128, seed: int = 0):
        super().__init__(input_shape, n_classes)
        self.dim, self.hidden, self.seed = int(dim), int(hidden), int(seed)
        with seeded(seed):
            self.net = _DeepSets(math.prod(self.input_shape), self.n_classes, self.dim, self.hidden)
        self.net.eval()

    @classmethod
    def create(cls, arch: Architecture, dim: int = 64, hidden: int = 128, seed: int = 0, **_: Any) -> "DeepSetsSupportEncoder":
        return cls(arch.input_shape, arch.n_classes, dim, hidden, seed)

    def fit(self, arch, params, tasks: Sequence[Task], family: Any = None) -> "DeepSetsSupportEncoder":
        x = torch.cat([t.support_x.flatten(1) for t in unique_tasks(tasks)])
        self.net.x_mean.copy_(x.mean(0))
        self.net.x_std.copy_(x.std(0, unbiased=False).clamp_min(1e-3))
        return self

    def parameters(self):
        return self.net.parameters()

    def encode_support(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(x, y)

    def config(self) -> dict:
        return {"name": self.name, "input_shape": list(self.input_shape), "n_classes": self.n_classes,
                "dim": self.dim, "hidden": self.hidden, "seed": self.seed}

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.net.state_dict().items()}

    @classmethod
    def from_state(cls, config: Mapping, state: Mapping[str, torch.Tensor]) -> "DeepSetsSupportEncoder":
        enc = cls(config["input_shape"], config["n_classes"], config["dim"], config["hidden"], config.get("seed", 0))
        enc.net.load_state_dict(dict(state), strict=True)
        return enc
