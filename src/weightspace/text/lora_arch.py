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
and column k of B by 1/c is exact). The full gauge is fixed by ``symmetry.canonical.lora_canonical``.

This module stays light (no transformers import) so that the architecture registry can import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture
from weightspace.spec import PermAxis, PermGroup, TensorSpec, WeightSpec

# Short module names -> path inside one BertLayer, and (d_out, d_in) of that Linear.
HIDDEN = 384
FFN = 1536
MODULES: dict[str, tuple[str, tuple[int, int]]] = {
    "query": ("attention.self.query", (HIDDEN, HIDDEN)),
    "key": ("attention.self.key", (HIDDEN, HIDDEN)),
    "value": ("attention.self.value", (HIDDEN, HIDDEN)),
    "attn_out": ("attention.output.dense", (HIDDEN, HIDDEN)),
    "ffn_in": ("intermediate.dense", (FFN, HIDDEN)),
    "ffn_out": ("output.dense", (HIDDEN, FFN)),
}
N_BASE_LAYERS = 6
INPUTS = ("ids", "hidden")


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
    name: ClassVar[str] = "lora-minilm"
    features_dim: ClassVar[int] = HIDDEN  # module(x, features=True) gives the sentence embedding the head reads

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
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one hidden input, (max_length, 385). Token ids are padded to each set's
        longest sentence and have no fixed shape: for them this attribute does not exist, and
        callers take the shape from the data (``getattr(arch, "input_shape", x.shape[1:])``)."""
        if self.inputs == "ids":
            raise AttributeError("token-id inputs have no fixed shape")
        return (self.max_length, HIDDEN + 1)

    def compact_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden inputs cut to the longest sentence among all of them (padding is at the end)."""
        from weightspace.text.lora import split_hidden, used_width

        if self.inputs != "hidden":
            return x
        return x[..., : max(used_width(split_hidden(x)[1]), 1), :]

    def canonical_frame(self, stacked: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Members in one frame: every (A, B) pair gauge-fixed in closed form from the SVD of
        B A, so equal ΔW means equal tensors (no alignment search is needed for LoRA)."""
        from weightspace.text.lora import canonicalize_lora

        return canonicalize_lora(self, stacked)

    def fit_head(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The same LoRA set with its head refitted on (x, y): logistic regression on the
        sentence embeddings the adapters produce (the head is label-specific; the adapters are
        what a generator transfers between tasks)."""
        from weightspace.text.base_model import base_model
        from weightspace.text.lora_methods import head_fitted_on

        adapters = {k: v for k, v in params.items() if not k.startswith("head.")}
        return head_fitted_on(self, adapters, x, y, base_model(self.max_length))[0]

    def module(self) -> nn.Module:
        """A module whose parameters are the spec tensors; forward(x) -> logits runs the frozen
        base model with this LoRA applied, from token ids or from hidden inputs (see ``inputs``)."""
        from weightspace.text.lora import LoRAClassifierModule

        return LoRAClassifierModule(self)


def register() -> None:
    """Make ``arch_from_dict`` (and so zoo.json) know this architecture."""
    try:
        from weightspace.nets import ARCHITECTURES
    except ImportError:  # weightspace.nets is importing this module in order to register it itself
        return
    ARCHITECTURES.setdefault(LoRAMiniLM.name, LoRAMiniLM)


register()
