"""The LoRA weight space of the frozen MiniLM as an Architecture, so a set of adapters is one
more WeightSpec: zoos store it, symmetry code aligns it, generators sample it.

Tensor names (spec order): for each adapted layer i and module m,
``layer{i}.{m}.lora_A`` (r, d_in) and ``layer{i}.{m}.lora_B`` (d_out, r); then the
classification head ``head.weight`` (n_classes, 384) and ``head.bias`` (n_classes,) that sits on
the mean-pooled, normalised sentence embedding. The update of a module's weight is
ΔW = (alpha / r) · B @ A (PEFT's convention).

Symmetries: ΔW is unchanged by A -> G A, B -> B G⁻¹ for any invertible r×r G (the LoRA gauge).
Its permutation and positive-diagonal part is recorded as one PermGroup per adapted module
(rank component k = row k of A, column k of B; scale_invariant because scaling row k of A by c
and column k of B by 1/c is exact). The full gauge is declared by ``low_rank_pairs`` and fixed in
closed form by ``symmetry.canonical.canonical_frame``.

Declared capabilities (nets.base.Architecture): ``features_dim`` (the sentence embedding the head
reads), ``head_refit`` (the head is label-specific: refitted per task by adapt.head_refit),
``low_rank_pairs`` and ``member_trainer`` (nets.lora_minilm.train).

This module stays light (transformers loads on first use, in base_model) so that the
architecture registry imports it directly. Imports run one way: spec -> train -> forward -> base_model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture, LowRankPair, MemberTrainer
from weightspace.nets.lora_minilm.base_model import HIDDEN, MODULES
from weightspace.nets.lora_minilm.base_model import N_LAYERS as N_BASE_LAYERS
from weightspace.nets.lora_minilm.forward import LoRAClassifierModule, split_hidden, used_width
from weightspace.nets.lora_minilm.train import LORA_TRAINER, embed
from weightspace.nets.registry import register_arch
from weightspace.spec import PermAxis, PermGroup, TensorSpec, WeightSpec

INPUTS = ("ids", "hidden")


@register_arch("lora-minilm", pretty="LoRA adapters on a frozen MiniLM",
               paper="LoRA (Hu et al. 2021) on all-MiniLM-L6-v2: MiniLM (Wang et al. 2020) trained as a "
                     "Sentence-BERT encoder (Reimers & Gurevych 2019)")
@dataclass(frozen=True)
class LoRAMiniLM(Architecture):
    """LoRA adapters on chosen layers/modules of all-MiniLM-L6-v2 plus a linear head."""

    n_classes: int = 2
    layers: tuple[int, ...] = (4, 5)  # top-2: measured as accurate as all 6 and ~3x cheaper to train
    modules: tuple[str, ...] = ("query", "value")  # PEFT's default targets for BERT
    rank: int = 4
    alpha: float = 8.0
    base: str = "sentence-transformers/all-MiniLM-L6-v2"
    max_length: int = 32
    # "ids": forward takes token ids and runs the whole base model. "hidden": forward takes the
    # frozen activations entering the first adapted layer with the attention mask as one more
    # channel, (N, L, 384 + 1), as the chatterbot family makes them with inputs="hidden"; every
    # batched (vmapped) trainer, evaluator and generator then skips the frozen lower layers.
    inputs: str = "ids"
    features_dim: ClassVar[int] = HIDDEN  # module(x, features=True) gives the sentence embedding the head reads
    head_refit: ClassVar[bool] = True  # the head is label-specific; the adapters are what transfers between tasks
    member_trainer: ClassVar[MemberTrainer] = LORA_TRAINER

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(sorted(int(i) for i in self.layers)))
        object.__setattr__(self, "modules", tuple(str(m) for m in self.modules))
        if not self.layers or any(i < 0 or i >= N_BASE_LAYERS for i in self.layers) or len(set(self.layers)) != len(self.layers):
            raise WeightspaceError(f"LoRA layers {list(self.layers)} must be distinct numbers from 0 to {N_BASE_LAYERS - 1}.")
        unknown = [m for m in self.modules if m not in MODULES]
        if unknown or not self.modules or len(set(self.modules)) != len(self.modules):
            raise WeightspaceError(f"LoRA modules {list(self.modules)} must be distinct names from {', '.join(MODULES)}.")
        if int(self.rank) < 1 or int(self.n_classes) < 2:
            raise WeightspaceError(f"LoRA rank must be >= 1 and n_classes >= 2 (got rank={self.rank}, n_classes={self.n_classes}).")
        if self.inputs not in INPUTS:
            raise WeightspaceError(f"LoRA inputs {self.inputs!r} must be one of {', '.join(INPUTS)}.")
        object.__setattr__(self, "rank", int(self.rank))
        object.__setattr__(self, "n_classes", int(self.n_classes))
        object.__setattr__(self, "alpha", float(self.alpha))

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    @property
    def first_layer(self) -> int:
        """Layers below this one never change, so their activations can be cached."""
        return min(self.layers)

    def targets(self) -> list[tuple[int, str]]:
        """(layer, module) pairs in spec order."""
        return [(i, m) for i in self.layers for m in self.modules]

    def spec(self) -> WeightSpec:
        tensors, groups = [], []
        for i, m in self.targets():
            d_out, d_in = MODULES[m][1]
            a, b = f"layer{i}.{m}.lora_A", f"layer{i}.{m}.lora_B"
            tensors += [TensorSpec(a, (self.rank, d_in)), TensorSpec(b, (d_out, self.rank))]
            groups.append(PermGroup(f"layer{i}.{m}.rank", self.rank,
                                    (PermAxis(a, 0, "out"), PermAxis(b, 1, "in")), scale_invariant=True))
        tensors += [TensorSpec("head.weight", (self.n_classes, HIDDEN)), TensorSpec("head.bias", (self.n_classes,))]
        return WeightSpec(tuple(tensors), tuple(groups), arch=self.name)

    def init_params(self, seed: int, scheme: str = "uniform") -> dict[str, torch.Tensor]:
        """PEFT's LoRA init: A ~ kaiming_uniform(a=√5) = U(±1/√d_in), B = 0 (so ΔW = 0 at the
        start); the head as nn.Linear: U(±1/√384). ``scheme`` must be "uniform" (= this)."""
        if scheme not in ("uniform", "peft"):
            raise WeightspaceError(f"LoRA adapters start from PEFT's init only; init scheme {scheme!r} is not supported (use 'uniform').")
        g = torch.Generator().manual_seed(int(seed))
        out = {}
        for t in self.spec().tensors:
            if t.name.endswith("lora_B"):
                out[t.name] = torch.zeros(t.shape)
            else:
                fan_in = t.shape[1] if t.name.endswith(("lora_A", "head.weight")) else HIDDEN
                out[t.name] = (torch.rand(t.shape, generator=g) * 2 - 1) / math.sqrt(fan_in)
        return out

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """Shape of one hidden input, (max_length, 385); None for token ids, which are padded to
        each set's longest sentence and have no fixed shape (callers take it from the data)."""
        return None if self.inputs == "ids" else (self.max_length, HIDDEN + 1)

    @classmethod
    def options_for(cls, family) -> dict[str, Any]:
        """A text family's classes, sentence length and inputs (token ids or hidden activations)."""
        if not hasattr(family, "max_length") or not hasattr(family, "inputs"):
            raise WeightspaceError(f"the {cls.name} architecture adapts a sentence model; the {family.name} family "
                                   "has no sentences (use a text family such as chatterbot).")
        return {"n_classes": family.n_classes, "max_length": family.max_length, "inputs": family.inputs}

    def features(self, params: Mapping[str, torch.Tensor], x: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """The adapted sentence embeddings the head reads, by the trainer's own (cached) path."""
        return embed(self, params, x, batch=batch)

    def compact_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden inputs cut to the longest sentence among all of them (padding is at the end)."""
        if self.inputs != "hidden":
            return x
        return x[..., : max(used_width(split_hidden(x)[1]), 1), :]

    def low_rank_pairs(self) -> tuple[LowRankPair, ...]:
        """Every adapted module's (lora_A, lora_B): ΔW = (alpha/r) B @ A, in spec order."""
        return tuple(LowRankPair(f"layer{i}.{m}.lora_A", f"layer{i}.{m}.lora_B", self.scaling) for i, m in self.targets())

    def module(self) -> nn.Module:
        """A module whose parameters are the spec tensors; forward(x) -> logits runs the frozen
        base model with this LoRA applied, from token ids or from hidden inputs (see ``inputs``)."""
        return LoRAClassifierModule(self)
