"""Small CNN: conv layers (1-D or 2-D by input shape), optional GroupNorm, global average
pooling and a linear head. No BatchNorm: its running statistics are state, not weights."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture, activation
from weightspace.nets.registry import register_arch
from weightspace.spec import PermAxis, PermGroup, TensorSpec, WeightSpec


@register_arch("cnn", pretty="small convolutional network",
               paper="LeCun et al. 1998 (gradient-based learning applied to document recognition); "
                     "GroupNorm (Wu & He 2018)")
@dataclass(frozen=True)
class CNN(Architecture):
    """conv{i} (stride 2 after the first layer), norm{i} when groupnorm_groups > 0, head."""

    input_shape: tuple[int, ...]  # (C, L) or (C, H, W)
    n_classes: int
    channels: tuple[int, ...] = (16, 32)
    kernel: int = 3
    activation: str = "relu"
    groupnorm_groups: int = 0  # 0 = no normalisation

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.input_shape) not in (2, 3):
            raise WeightspaceError(
                f"the cnn needs inputs shaped (C, L) or (C, H, W), got {self.input_shape}; use the mlp for flat inputs."
            )
        if self.groupnorm_groups and any(c % self.groupnorm_groups for c in self.channels):
            raise WeightspaceError(f"every channel count {self.channels} must divide by groupnorm_groups={self.groupnorm_groups}.")
        activation(self.activation)

    @property
    def ndim(self) -> int:
        return len(self.input_shape) - 1

    def spec(self) -> WeightSpec:
        k = (self.kernel,) * self.ndim
        chans = (self.input_shape[0], *self.channels)
        tensors, groups = [], []
        for i in range(len(self.channels)):
            tensors += [TensorSpec(f"conv{i}.weight", (chans[i + 1], chans[i], *k)), TensorSpec(f"conv{i}.bias", (chans[i + 1],))]
            if self.groupnorm_groups:
                tensors += [TensorSpec(f"norm{i}.weight", (chans[i + 1],)), TensorSpec(f"norm{i}.bias", (chans[i + 1],))]
        tensors += [TensorSpec("head.weight", (self.n_classes, chans[-1])), TensorSpec("head.bias", (self.n_classes,))]
        for i, c in enumerate(self.channels):
            consumer = f"conv{i + 1}.weight" if i + 1 < len(self.channels) else "head.weight"
            axes = [PermAxis(f"conv{i}.weight", 0, "out"), PermAxis(f"conv{i}.bias", 0, "out")]
            if self.groupnorm_groups:
                axes += [PermAxis(f"norm{i}.weight", 0, "norm"), PermAxis(f"norm{i}.bias", 0, "norm")]
            axes.append(PermAxis(consumer, 1, "in"))
            groups.append(
                PermGroup(
                    name=f"c{i}",
                    size=c,
                    axes=tuple(axes),
                    scale_invariant=self.activation == "relu" and not self.groupnorm_groups,
                    blocks=self.groupnorm_groups or 1,
                )
            )
        return WeightSpec(tuple(tensors), tuple(groups), arch=self.name)

    def module(self) -> nn.Module:
        return _CNNModule(self)


class _CNNModule(nn.Module):
    def __init__(self, cfg: CNN):
        super().__init__()
        conv = nn.Conv1d if cfg.ndim == 1 else nn.Conv2d
        chans = (cfg.input_shape[0], *cfg.channels)
        self.n = len(cfg.channels)
        self.gn = cfg.groupnorm_groups
        for i in range(self.n):
            setattr(self, f"conv{i}", conv(chans[i], chans[i + 1], cfg.kernel, stride=1 if i == 0 else 2, padding=cfg.kernel // 2))
            if self.gn:
                setattr(self, f"norm{i}", nn.GroupNorm(self.gn, chans[i + 1]))
        self.head = nn.Linear(chans[-1], cfg.n_classes)
        self.act = activation(cfg.activation)
        self.ndim = cfg.ndim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.n):
            x = getattr(self, f"conv{i}")(x)
            if self.gn:
                x = getattr(self, f"norm{i}")(x)
            x = self.act(x)
        x = x.mean(dim=tuple(range(2, 2 + self.ndim)))  # global average pooling
        return self.head(x)
