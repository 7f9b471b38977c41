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
(text-both). ``condition`` builds the code from those; ``select`` samples and keeps the best
candidates as ``generate.generate_weights`` does, for a condition built here.

Where this glue would live with the stages it touches open for editing:
``LoRAMiniLM.inputs_from_texts(texts)`` on the architecture (nets/, one definition for the
family and the server), ``TextSupportEncoder.encode_texts(texts, y)`` (encode/text_conditions.py)
and a ``condition=`` argument of ``generate_weights`` (generate/sampling.py), so that this
module shrinks to request checking.

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
from weightspace.errors import WeightspaceError
from weightspace.generate.sampling import Generated, chance_accuracy, support_scores
from weightspace.nets.base import Architecture
from weightspace.nets.lora_minilm import LoRAMiniLM

BASE_MODEL_LOCK = threading.Lock()  # the frozen MiniLM is one object per process (base_model's lru_cache)


def reads_sentences(arch: Architecture) -> bool:
    """Whether the architecture's inputs are sentences of the frozen MiniLM (so raw text can be
    turned into them). The same capability test as formats.is_lora."""
    return isinstance(arch, LoRAMiniLM)


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
    (N, max_length, 385) entering ``arch.first_layer`` (as tasks/chatterbot.py builds them)."""
    from weightspace.nets.lora_minilm.base_model import PAD_ID, base_model, tokenize
    from weightspace.nets.lora_minilm.forward import join_hidden

    ids = tokenize(list(texts), arch.max_length)
    if arch.inputs == "ids":
        return ids
    ids = torch.nn.functional.pad(ids, (0, arch.max_length - ids.shape[1]), value=PAD_ID)
    hidden = base_model(arch.max_length).lower_hidden(ids, arch.first_layer)
    return join_hidden(hidden, ids != PAD_ID)


def condition(encoder, x: torch.Tensor, y: torch.Tensor, description: str | None) -> torch.Tensor:
    """The code of a support set (x: the architecture's inputs), with the description for an
    encoder that reads both."""
    with torch.no_grad():
        return encoder.encode((x, y) if description is None else (x, y, description))


def select(gen, cond: torch.Tensor, x: torch.Tensor, y: torch.Tensor, n: int, seed: int, best_of: int,
           deterministic: bool) -> Generated:
    """n models for ``cond``: every candidate scored on (x, y), those beating the constant guess
    kept, best support loss first (generate_weights' rule, for a condition made here)."""
    draws = n if deterministic else n * best_of
    cands = gen.sample(cond, draws, seed=seed, deterministic=deterministic)
    acc, loss = support_scores(gen.arch, cands, x, y)
    ok = (acc > chance_accuracy(y)) & torch.isfinite(loss)
    if int(ok.sum()) < n:
        raise WeightspaceError(
            f"only {int(ok.sum())} of {draws} generated models beat the constant guess on the support set "
            f"(best accuracy {float(acc.max()):.2f}); this task is likely too far from the zoo's — "
            "try a larger best_of, or build a zoo that covers such tasks."
        )
    loss = torch.where(ok, loss, torch.full_like(loss, float("inf")))
    keep = loss.argsort()[:n]
    return Generated({k: v[keep].contiguous() for k, v in cands.items()}, acc[keep], loss[keep], draws, int(ok.sum()))
