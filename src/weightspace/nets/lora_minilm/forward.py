"""The LoRA forward pass: a LoRA set (spec tensors of ``LoRAMiniLM``) applied to the frozen MiniLM.

Each targeted Linear keeps its frozen weight W and gets W + (alpha/r) B @ A, passed to the
layer through ``torch.func.functional_call``; nothing in the base model is ever mutated, so one
process-wide base model serves every adapter, and gradients reach A, B and the head only.

Two entry points with the same maths:
- ``logits(arch, params, ids)`` runs the whole network from token ids;
- ``logits_from_hidden(arch, params, hidden, mask)`` starts from cached activations entering
  layer ``arch.first_layer`` (see ``base_model.HiddenCache``): the fast training path.

``arch`` is a ``LoRAMiniLM`` everywhere here; this module reads its fields and never imports it
(spec.py imports this module, so the package's imports run one way: spec -> forward -> base_model).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from weightspace.nets.base import Architecture
from weightspace.nets.lora_minilm.base_model import MODULES, PAD_ID, BaseModel, base_model, mean_pool


def delta_weights(arch: Architecture, params: Mapping[str, torch.Tensor]) -> dict[tuple[int, str], torch.Tensor]:
    """ΔW = (alpha/r) · B @ A for each (layer, module), shape (d_out, d_in)."""
    return {(i, m): arch.scaling * (params[f"layer{i}.{m}.lora_B"] @ params[f"layer{i}.{m}.lora_A"])
            for i, m in arch.targets()}


def layer_weights(arch: Architecture, params: Mapping[str, torch.Tensor], model: BaseModel) -> dict[int, dict[str, torch.Tensor]]:
    """Replacement weights per layer, named inside the BertLayer: {4: {"attention.self.query.weight": W+ΔW}}."""
    out: dict[int, dict[str, torch.Tensor]] = {}
    for (i, m), delta in delta_weights(arch, params).items():
        path = MODULES[m][0]
        frozen = model.layer(i).get_parameter(f"{path}.weight")
        out.setdefault(i, {})[f"{path}.weight"] = frozen + delta
    return out


def join_hidden(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, L, 384) activations and their (N, L) keep-mask as one (N, L, 385) float input."""
    return torch.cat([hidden, mask.to(hidden.dtype).unsqueeze(-1)], dim=-1)


def split_hidden(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of ``join_hidden``."""
    return x[..., :-1], x[..., -1] > 0.5


def used_width(mask: torch.Tensor) -> int:
    """Columns up to the longest sentence of a (..., L) attention mask (padding is at the end)."""
    return int(mask.sum(-1).max().item()) if mask.numel() else 1


def embeddings_from_hidden(arch: Architecture, params: Mapping[str, torch.Tensor], hidden: torch.Tensor,
                           mask: torch.Tensor, start: int | None = None, model: BaseModel | None = None,
                           trim: bool = True) -> torch.Tensor:
    """Adapted, normalised sentence embeddings from activations entering layer ``start``.
    ``trim`` drops unused padding columns first (not under vmap, where the mask may differ per member)."""
    model = model or base_model(arch.max_length)
    start = arch.first_layer if start is None else start
    if start > arch.first_layer:
        raise ValueError(f"activations entering layer {start} are past the first adapted layer {arch.first_layer}")
    if trim:  # drop padding columns that no row of this batch uses (batches of short sentences run faster)
        width = used_width(mask)
        hidden, mask = hidden[:, :width], mask[:, :width]
    h = model.run_layers(hidden, mask, start, model.n_layers, weights=layer_weights(arch, params, model))
    return mean_pool(h, mask)


def head(params: Mapping[str, torch.Tensor], emb: torch.Tensor) -> torch.Tensor:
    return nn.functional.linear(emb, params["head.weight"], params["head.bias"])


def logits_from_hidden(arch: Architecture, params: Mapping[str, torch.Tensor], hidden: torch.Tensor,
                       mask: torch.Tensor, start: int | None = None, model: BaseModel | None = None,
                       trim: bool = True) -> torch.Tensor:
    return head(params, embeddings_from_hidden(arch, params, hidden, mask, start, model, trim))


def embeddings(arch: Architecture, params: Mapping[str, torch.Tensor], ids: torch.Tensor,
               model: BaseModel | None = None) -> torch.Tensor:
    """Adapted sentence embeddings straight from token ids (no cache)."""
    model = model or base_model(arch.max_length)
    mask = ids != PAD_ID
    h = model.bert.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))
    return embeddings_from_hidden(arch, params, h, mask, start=0, model=model)


def logits(arch: Architecture, params: Mapping[str, torch.Tensor], ids: torch.Tensor,
           model: BaseModel | None = None) -> torch.Tensor:
    return head(params, embeddings(arch, params, ids, model))


def _batched(x: torch.Tensor) -> bool:
    """Whether ``x`` carries a vmap batch dimension (then its values differ per member)."""
    check = getattr(torch._C._functorch, "is_batchedtensor", None)
    return True if check is None else bool(check(x))


class LoRAClassifierModule(nn.Module):
    """The Architecture-contract module: parameters named exactly as the spec (nested
    ``layer4.query.lora_A``), forward(ids) -> logits. The base model is held outside the
    module's state, so ``state_dict()`` is the LoRA set and nothing else. It is loaded here,
    not on the first forward, so that forward can run under ``torch.func.vmap``."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.base = base_model(arch.max_length)  # a plain object: not a submodule, not in state_dict
        for t in arch.spec().tensors:
            *path, leaf = t.name.split(".")
            owner = self
            for part in path:
                if not hasattr(owner, part):
                    owner.add_module(part, nn.Module())
                owner = getattr(owner, part)
            owner.register_parameter(leaf, nn.Parameter(torch.zeros(t.shape)))
        self.load_state_dict(arch.init_params(0))

    def _params(self) -> dict[str, torch.Tensor]:
        # attribute lookups (not named_parameters) so torch.func.functional_call's swaps are seen
        out = {}
        for name in self.arch.spec().names:
            obj = self
            for part in name.split("."):
                obj = getattr(obj, part)
            out[name] = obj
        return out

    def forward(self, x: torch.Tensor, features: bool = False) -> torch.Tensor:
        """Logits, or with ``features=True`` the adapted sentence embeddings the head reads."""
        params = self._params()
        if self.arch.inputs == "hidden":
            hidden, mask = split_hidden(x)
            # Inputs shared by every member of a vmapped call are plain tensors and can be cut to
            # their longest sentence (about 2x less work on chatterbot); per-member inputs cannot.
            emb = embeddings_from_hidden(self.arch, params, hidden, mask, model=self.base, trim=not _batched(x))
        else:
            emb = embeddings(self.arch, params, x, self.base)
        return emb if features else head(params, emb)
