"""Raw sentences and plain-text descriptions for generators of LoRA adapters (serve glue).

A client of a text generator holds sentences, not the frozen MiniLM's token ids or hidden
activations. This module turns a request's ``support.texts`` into the inputs the generator's
architecture reads — token ids (``inputs="ids"``) or the frozen activations entering the first
adapted layer plus the mask (``inputs="hidden"``), made the way the chatterbot family makes its
own — so the generator's condition encoder sees exactly what it saw for the zoo's tasks, and
every candidate can be scored on the same support set.

What a generator accepts follows from its condition encoder (``accepted_fields``): a support
set (kind ``support``: text-support, support-probe, ...), a descriptor, a description (kind
``text``), or a support set *and* a description for a text encoder with a support half
(text-both). ``condition`` builds the code from those; ``generate.sampling.select`` samples and
keeps the best candidates for it, as ``generate_weights`` does for a condition it builds.

Where this glue would live with the stages it touches open for editing:
``LoRAMiniLM.inputs_from_texts(texts)`` on the architecture (nets/, one definition for the
family and the server) and ``TextSupportEncoder.encode_texts(texts, y)``
(encode/text_conditions.py), so that this module shrinks to request checking.

Thread safety: every LoRA forward pass (the frozen MiniLM's layers with ΔW swapped in through
``torch.func.functional_call``) and the fast tokenizer act on one process-wide base model, and
functional_call swaps a module's parameters in place; two threads interleaving there give wrong
outputs. ``BASE_MODEL_LOCK`` serialises the work of generators over that shared model.
"""

from __future__ import annotations

import threading
from typing import Sequence

import torch

from weightspace.encode.condition import SupportSetEncoder
from weightspace.nets.lora_minilm import LoRAMiniLM

BASE_MODEL_LOCK = threading.Lock()  # the frozen MiniLM is one object per process (base_model's lru_cache)


def accepted_fields(encoder) -> frozenset[str]:
    """The request fields (support, descriptor, description) a condition encoder needs together."""
    kind = getattr(encoder, "kind", None)
    if kind == "support":
        return frozenset({"support"})
    if kind == "descriptor":
        return frozenset({"descriptor"})
    if kind == "text":
        # a text encoder with a support-set half (text-both) needs both
        both = isinstance(getattr(encoder, "support", None), SupportSetEncoder)
        return frozenset({"support", "description"}) if both else frozenset({"description"})
    return frozenset()


@torch.no_grad()
def sentence_inputs(arch: LoRAMiniLM, texts: Sequence[str]) -> torch.Tensor:
    """The architecture's inputs for raw sentences: token ids (N, L), or hidden inputs
    (N, max_length, 385) entering ``arch.first_layer`` (as the text task families build them)."""
    from weightspace.nets.lora_minilm.base_model import tokenize
    from weightspace.tasks.text_base import hidden_inputs

    ids = tokenize(list(texts), arch.max_length)
    return ids if arch.inputs == "ids" else hidden_inputs(ids, arch.max_length, arch.first_layer)


def condition(encoder, x: torch.Tensor, y: torch.Tensor, description: str | None) -> torch.Tensor:
    """The code of a support set (x: the architecture's inputs), with the description for an
    encoder that reads both."""
    with torch.no_grad():
        return encoder.encode((x, y) if description is None else (x, y, description))
