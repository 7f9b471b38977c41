"""The contract every modelled architecture fulfils.

An architecture is a frozen config dataclass. It builds an ``nn.Module`` whose state-dict names
are exactly the names of its WeightSpec, so ``torch.func.functional_call(module, params, x)``
runs any member's weights (and, under ``vmap``, many members at once).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Mapping

import torch
from torch import nn

from weightspace.errors import WeightspaceError
from weightspace.spec import WeightSpec, stack_members

INIT_SCHEMES = ("uniform", "kaiming", "xavier")


class Architecture:
    name: ClassVar[str]
    # Width of what the head reads, for architectures whose head is refitted per task (LoRA):
    # their module's forward(x, features=True) returns it. None: forward gives logits only.
    features_dim: ClassVar[int | None] = None

    def spec(self) -> WeightSpec:  # pragma: no cover - interface
        raise NotImplementedError

    def module(self) -> nn.Module:  # pragma: no cover - interface
        raise NotImplementedError

    def compact_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (..., *input_shape) without what no example in it uses (padding), for batches
        that the module's own trimming cannot shorten (per-member inputs under vmap)."""
        return x

    def constant_params(self, label: int) -> dict[str, torch.Tensor] | None:
        """Weights that predict ``label`` for every input (the majority-class baseline), or None
        where the architecture cannot express it. Default: every tensor zero but the spec's last,
        taken to be the output bias when its shape is (n_classes,), which becomes one-hot."""
        spec = self.spec()
        last = spec.tensors[-1]
        n_classes = getattr(self, "n_classes", None)
        if not last.name.endswith("bias") or last.shape != (n_classes,):
            return None
        params = {t.name: torch.zeros(t.shape) for t in spec.tensors}
        params[last.name][label] = 1.0
        return params

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {"name": self.name, **{k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}}

    def init_params(self, seed: int, scheme: str = "uniform") -> dict[str, torch.Tensor]:
        """Fresh weights from a seeded generator (never the global RNG, so workers agree).

        uniform: PyTorch's default Linear/Conv init, U(±1/sqrt(fan_in)) for weight and bias.
        kaiming: N(0, 2/fan_in) weights, zero biases.  xavier: N(0, 2/(fan_in+fan_out)).
        Norm scales start at 1 and norm shifts at 0 in every scheme.
        """
        if scheme not in INIT_SCHEMES:
            raise WeightspaceError(f"unknown init scheme {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}.")
        g = torch.Generator().manual_seed(int(seed))
        spec = self.spec()
        fan_in = self._fan_in()
        params = {}
        for t in spec.tensors:
            kind = self._tensor_kind(t.name)
            if kind == "norm_weight":
                params[t.name] = torch.ones(t.shape)
                continue
            if kind == "norm_bias":
                params[t.name] = torch.zeros(t.shape)
                continue
            fi = fan_in[t.name]
            if scheme == "uniform":
                bound = 1.0 / math.sqrt(fi)
                params[t.name] = (torch.rand(t.shape, generator=g) * 2 - 1) * bound
            elif kind == "bias":
                params[t.name] = torch.zeros(t.shape)
            else:
                fo = t.shape[0] * math.prod(t.shape[2:])
                std = math.sqrt(2.0 / fi) if scheme == "kaiming" else math.sqrt(2.0 / (fi + fo))
                params[t.name] = torch.randn(t.shape, generator=g) * std
        return params

    def init_params_stacked(self, seeds, scheme: str = "uniform") -> dict[str, torch.Tensor]:
        members = [self.init_params(s, scheme) for s in seeds]
        return stack_members(members, self.spec())

    # Architectures say which tensors are weights, biases and norm parameters, and fan-ins.
    def _tensor_kind(self, name: str) -> str:
        if name.startswith("norm"):
            return "norm_weight" if name.endswith("weight") else "norm_bias"
        return "weight" if name.endswith("weight") else "bias"

    def _fan_in(self) -> dict[str, int]:
        spec = self.spec()
        out = {}
        for t in spec.tensors:
            w = spec.shapes[t.name.rsplit(".", 1)[0] + ".weight"]
            out[t.name] = math.prod(w[1:])
        return out


def load_module(arch: Architecture, params: Mapping[str, torch.Tensor]) -> nn.Module:
    """An nn.Module of ``arch`` carrying ``params`` (checked against the spec)."""
    arch.spec().validate(params)
    m = arch.module()
    m.load_state_dict(dict(params), strict=True)
    return m


def activation(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
    if name not in acts:
        raise WeightspaceError(f"unknown activation {name!r}; choose one of {', '.join(acts)}.")
    return acts[name]()
