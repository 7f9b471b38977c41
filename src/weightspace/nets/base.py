"""The contract every modelled architecture fulfils.

An architecture is a frozen config dataclass. It builds an ``nn.Module`` whose state-dict names
are exactly the names of its WeightSpec, so ``torch.func.functional_call(module, params, x)``
runs any member's weights (and, under ``vmap``, many members at once).

Every optional capability is declared here with its default, so the stages ask the architecture
instead of probing it (``hasattr``) or testing its name:

- ``features_dim`` (None): width of what the head reads; ``features(params, x)`` and
  ``module()(x, features=True)`` return it
- ``head_refit`` (False): the head is label-specific and refitted per task (adapt.head_refit)
- ``low_rank_pairs()`` (none): tensors whose product is all the network uses, which gives the
  closed-form common frame (symmetry.canonical.canonical_frame) and ΔW task vectors (adapt.task_vectors)
- ``member_trainer`` (None: the zoo's batched trainer): how zoo members train (``MemberTrainer``)
- ``options_for(family)``: the options a family fixes (input shape and classes by default)
- ``compact_inputs``, ``constant_params``, ``describe``: see each

and every architecture has ``n_classes`` and ``input_shape`` (None where inputs have no fixed shape).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Mapping, NamedTuple, Sequence

import torch
from torch import nn

from weightspace.errors import WeightspaceError
from weightspace.spec import WeightSpec, stack_members

INIT_SCHEMES = ("uniform", "kaiming", "xavier")


class LowRankPair(NamedTuple):
    """Tensors ``a`` (r, d_in) and ``b`` (d_out, r) whose update is ``scale * b @ a`` (a LoRA module)."""

    a: str
    b: str
    scale: float


class MemberTrainer:
    """How an architecture's zoo members train when the zoo's batched trainer (zoo.train: one
    ``TrainConfig``, members stacked under vmap) does not fit it, e.g. adapters of a frozen
    backbone with their own loop. ``zoo build`` calls it inside its workers, so such zoos keep the
    one builder's plan, resume checks and backends."""

    config_class: ClassVar[type]  # the settings dataclass, recorded in every member's manifest row
    init_label: ClassVar[str]  # MemberRecord.init of every member (e.g. "independent:peft")

    def check(self, arch: "Architecture", family, cfg) -> None:
        """Raise WeightspaceError, before anything is written, if ``family`` cannot train ``arch``."""

    def train_tasks(self, arch: "Architecture", tasks: Sequence, seeds: Sequence[int], cfg) -> list:
        """One ``(weights, metrics, seconds)`` per (task, seed)."""
        raise NotImplementedError

    def fit(self, arch: "Architecture", x: torch.Tensor, y: torch.Tensor, seed: int, cfg) -> dict[str, torch.Tensor]:
        """One member trained on (x, y) alone (the support-set baseline)."""
        raise NotImplementedError


class Architecture:
    name: ClassVar[str]
    n_classes: int
    input_shape: tuple[int, ...] | None  # one example's shape; None where it varies (token ids)
    # Width of what the head reads: the module's forward(x, features=True) returns it. None:
    # forward gives logits only.
    features_dim: ClassVar[int | None] = None
    # True when the head is label-specific and refitted on each task's support set (needs features_dim).
    head_refit: ClassVar[bool] = False
    member_trainer: ClassVar[MemberTrainer | None] = None  # None: zoo.train's batched trainer

    @classmethod
    def options_for(cls, family) -> dict[str, Any]:
        """The options a task family fixes (``make_arch(name, **options_for(family), **user_options)``)."""
        return {"input_shape": family.input_shape, "n_classes": family.n_classes}

    def low_rank_pairs(self) -> tuple[LowRankPair, ...]:
        """Tensor pairs used only through their product (a GL(r) gauge with a closed-form frame)."""
        return ()

    def describe(self) -> str:
        """One line for listings: the name and the options."""
        opts = {k: v for k, v in self.to_dict().items() if k not in ("name", "input_shape", "n_classes")}
        return " ".join([self.name, *(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in opts.items())])

    def spec(self) -> WeightSpec:  # pragma: no cover - interface
        raise NotImplementedError

    def module(self) -> nn.Module:  # pragma: no cover - interface
        raise NotImplementedError

    @torch.no_grad()
    def features(self, params: Mapping[str, torch.Tensor], x: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """(N, features_dim) what the head reads for N inputs under ``params`` (the head itself is
        not needed): the module's forward(x, features=True), ``batch`` inputs at a time."""
        if self.features_dim is None:
            raise WeightspaceError(f"{self.name} networks expose no features (features_dim is None).")
        module = self.module()
        out = [torch.func.functional_call(module, dict(params), (x[s:s + batch],), {"features": True})
               for s in range(0, x.shape[0], batch)]
        return torch.cat(out) if out else torch.zeros(0, self.features_dim)

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
        if not last.name.endswith("bias") or last.shape != (self.n_classes,):
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
        params = {}
        for t in spec.tensors:  # tensors are named "<layer>.weight" / "<layer>.bias"; norm layers "norm..."
            if t.name.startswith("norm"):
                params[t.name] = (torch.ones if t.name.endswith("weight") else torch.zeros)(t.shape)
                continue
            fi = math.prod(spec.shapes[t.name.rsplit(".", 1)[0] + ".weight"][1:])  # fan-in of the layer
            if scheme == "uniform":
                bound = 1.0 / math.sqrt(fi)
                params[t.name] = (torch.rand(t.shape, generator=g) * 2 - 1) * bound
            elif not t.name.endswith("weight"):  # a bias
                params[t.name] = torch.zeros(t.shape)
            else:
                fo = t.shape[0] * math.prod(t.shape[2:])
                std = math.sqrt(2.0 / fi) if scheme == "kaiming" else math.sqrt(2.0 / (fi + fo))
                params[t.name] = torch.randn(t.shape, generator=g) * std
        return params

    def init_params_stacked(self, seeds, scheme: str = "uniform") -> dict[str, torch.Tensor]:
        members = [self.init_params(s, scheme) for s in seeds]
        return stack_members(members, self.spec())


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
