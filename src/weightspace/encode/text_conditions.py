"""Text conditions: what a LoRA generator is told about a new sentence-classification task.

Three training-free ConditionEncoders built on the frozen all-MiniLM-L6-v2 (the model the
LoRA adapters modify), so a generator needs no text model of its own:

- ``text-support`` (kind "support"): the frozen sentence embedding of every example of a
  labelled support set, averaged per class (class prototypes, in class order; a class the set
  lacks gets zeros). Averaging makes the code independent of the examples' order; keeping the
  classes apart makes it depend on which class is which, as the adapter's head does.
- ``text-description`` (kind "text"): the frozen sentence embedding of ``Task.description``
  ("English sentences about food vs other topics").
- ``text-both`` (kind "text"): the two codes side by side.

Every code is standardised per coordinate over the zoo's own tasks (as ``support-probe`` is).
``whiten=k`` (default off) keeps only the k leading principal directions over the zoo, each
scaled to unit variance, for generators that overfit a few dozen tasks described by 768 numbers.
Measured on 40 chatterbot zoo tasks (benchmark in the lead's notes): it costs same-task
retrieval at every k <= 32 (held-out 16-way: 74% unwhitened, 49-56% whitened) and helps a ridge
probe from support code to task structure only a little (held-out cosine 0.24 -> 0.30 at k=16).

Sentence embeddings come from the frozen model with no adapter: from hidden inputs (LoRAMiniLM
with ``inputs="hidden"``: activations entering ``arch.first_layer``) the frozen layers
``first_layer..5`` run and are mean-pooled; from token ids the whole model runs. Both give the
same embedding. The model (and transformers) loads on the first encode, not on import.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from weightspace.encode.condition import (
    ConditionEncoder,
    SupportSetEncoder,
    check_support,
    register_condition,
    support_of,
    unique_tasks,
)
from weightspace.errors import WeightspaceError
from weightspace.nets import arch_from_dict
from weightspace.nets.base import Architecture
from weightspace.nets.lora_minilm import LoRAMiniLM
from weightspace.nets.lora_minilm.base_model import PAD_ID, base_model, mean_pool
from weightspace.nets.lora_minilm.forward import split_hidden
from weightspace.tasks.base import Task

GROUP = 16  # sentences per forward pass (see length_groups)
VOCAB_SIZE = 30522  # all-MiniLM-L6-v2's (BERT uncased) vocabulary


# ----- frozen sentence embeddings ------------------------------------------------------------
def length_groups(lengths: torch.Tensor, size: int = GROUP) -> list[torch.Tensor]:
    """Indices of sentences in length-sorted groups of ``size``, each cut to its longest sentence.

    Padding costs as much as words in the dense layers and chatterbot sentences range from 3 to
    32 tokens; and on one thread large batches are no faster per sentence. Measured (one thread,
    busy 2-core machine): a 20-sentence set in groups of 16 takes 38 ms vs 54 ms as one batch cut
    to its longest sentence; 640 sentences take 1.4 ms each in groups of 16, 4.7 ms in groups of 512.
    """
    return list(lengths.argsort(stable=True).split(size))


@torch.no_grad()
def frozen_embeddings(arch: Architecture, x: torch.Tensor) -> torch.Tensor:
    """(N, 384) normalised sentence embeddings of the unadapted MiniLM for N inputs of ``arch``:
    hidden inputs (N, L, 385) or token ids (N, L), given as float or int."""
    model = base_model(arch.max_length)
    if arch.inputs == "ids":
        ids = x.round().long()  # support sets arrive as float (check_support, TaskBank)
        mask = ids != PAD_ID
    else:
        hidden, mask = split_hidden(x.float())
    out = torch.zeros(x.shape[0], model.hidden)
    for idx in length_groups(mask.sum(1)) if x.shape[0] else []:
        width = max(1, int(mask[idx].sum(1).max()))  # padding columns no sentence uses change nothing
        if arch.inputs == "ids":
            out[idx] = model.embed(ids[idx, :width])
        else:
            m = mask[idx, :width]
            out[idx] = mean_pool(model.run_layers(hidden[idx, :width], m, arch.first_layer, model.n_layers), m)
    return out


@torch.no_grad()
def embed_texts(texts: Sequence[str], max_length: int = 32) -> torch.Tensor:
    """(N, 384) normalised frozen MiniLM embeddings of sentences."""
    return base_model(max_length).embed(list(texts))


def class_prototypes(emb: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(B, C * D) per-class mean of (B, S, D) embeddings labelled (B, S); zeros for absent classes."""
    onehot = torch.nn.functional.one_hot(y.long(), n_classes).to(emb.dtype)  # (B, S, C)
    sums = onehot.transpose(1, 2) @ emb  # (B, C, D)
    counts = onehot.sum(1).clamp_min(1.0)  # an absent class: 0 / 1 = zeros
    return (sums / counts[..., None]).reshape(emb.shape[0], -1)


# ----- zoo statistics --------------------------------------------------------------------------
class ZooScale:
    """Per-coordinate standardisation over the zoo's codes, then optionally the ``whiten`` leading
    principal directions of the standardised zoo codes, each scaled to unit variance over the zoo."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, projection: torch.Tensor | None = None):
        self.mean, self.std, self.projection = mean, std, projection

    @classmethod
    def fit(cls, raw: torch.Tensor, whiten: int = 0) -> "ZooScale":
        mean, std = raw.mean(0), raw.std(0, unbiased=False)
        # A coordinate that barely moves over a few dozen zoo tasks would otherwise blow up any
        # new task's small difference there: floor each spread at a tenth of the typical one.
        std = std.clamp_min(max(0.1 * float(std.median()), 1e-6))
        scale = cls(mean, std)
        if whiten:
            z = scale.standardise(raw)
            _, s, vh = torch.linalg.svd(z, full_matrices=False)
            keep = int((s > s[0] * 1e-4).sum()) if s.numel() and s[0] > 0 else 0
            k = min(int(whiten), keep)
            if k < 1:
                raise WeightspaceError("whiten needs zoo tasks whose codes differ; the zoo has too few distinct tasks.")
            # unit variance per kept direction: z @ v_i has variance s_i^2 / T over the zoo
            scale.projection = vh[:k].T * (raw.shape[0] ** 0.5 / s[:k])
        return scale

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0] if self.projection is None else self.projection.shape[1])

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw - self.mean) / self.std

    def __call__(self, raw: torch.Tensor) -> torch.Tensor:
        z = self.standardise(raw)
        return z if self.projection is None else z @ self.projection

    def state(self, prefix: str = "") -> dict[str, torch.Tensor]:
        out = {f"{prefix}mean": self.mean, f"{prefix}std": self.std}
        if self.projection is not None:
            out[f"{prefix}projection"] = self.projection
        return out

    @classmethod
    def from_state(cls, state: Mapping[str, torch.Tensor], prefix: str = "") -> "ZooScale":
        return cls(state[f"{prefix}mean"], state[f"{prefix}std"], state.get(f"{prefix}projection"))


def _whiten_option(name: str, whiten: Any, cfg: Mapping[str, Any]) -> int:
    """The one option a text condition takes: ``whiten``, a whole number >= 0 (0 = off)."""
    if cfg:
        raise WeightspaceError(f"the {name} condition has no option {', '.join(sorted(cfg))}; it takes whiten.")
    if isinstance(whiten, bool) or not isinstance(whiten, int) or whiten < 0:
        raise WeightspaceError(f"the {name} condition's whiten option must be a whole number >= 0 (0 = off), got {whiten!r}.")
    return whiten


class ZooScaled:
    """What the text-support and text-description encoders share: raw codes scaled by a ZooScale
    fitted on the zoo's tasks (``whiten`` leading directions), which is all their state."""

    name: str
    whiten: int
    scale: ZooScale | None

    @property
    def dim(self) -> int:
        return 0 if self.scale is None else self.scale.dim

    def fit_scale(self, raw: torch.Tensor):
        self.scale = ZooScale.fit(raw, self.whiten)
        return self

    def fitted_scale(self) -> ZooScale:
        if self.scale is None:
            raise WeightspaceError(f"the {self.name} condition is not fitted; fit the generator on a zoo first.")
        return self.scale

    def state(self) -> dict[str, torch.Tensor]:
        return self.fitted_scale().state()


# ----- support sets ----------------------------------------------------------------------------
@register_condition("text-support", pretty="MiniLM class prototypes of the support set",
                    paper="Sentence-BERT embeddings (Reimers & Gurevych 2019) of all-MiniLM-L6-v2, averaged per "
                          "class as in prototypical networks (Snell et al. 2017)")
class TextSupportEncoder(ZooScaled, SupportSetEncoder):
    """Class prototypes of a support set's frozen MiniLM sentence embeddings, standardised over the zoo."""

    def __init__(self, arch: Architecture, whiten: int = 0, scale: ZooScale | None = None):
        if not isinstance(arch, LoRAMiniLM):
            raise WeightspaceError(f"the {self.name} condition embeds sentences with MiniLM and needs a lora-minilm "
                                   f"architecture, not {arch.name if isinstance(arch, Architecture) else type(arch).__name__!r}.")
        # Not SupportSetEncoder.__init__: token ids have no fixed shape (each set is padded to its
        # longest sentence), so input_shape is None for them and sets are checked by their own width.
        self.input_shape = tuple(arch.input_shape) if arch.inputs == "hidden" else None
        self.n_classes = arch.n_classes
        self.arch, self.whiten, self.scale = arch, int(whiten), scale

    @classmethod
    def create(cls, arch: Architecture, whiten: int = 0, **cfg: Any) -> "TextSupportEncoder":
        return cls(arch, _whiten_option(cls.name, whiten, cfg))

    def check(self, x, y, where: str = "support set") -> tuple[torch.Tensor, torch.Tensor]:
        """A validated (float x, int64 y) support set of hidden inputs or token ids."""
        if self.input_shape is not None:
            return check_support(x, y, self.input_shape, self.n_classes, where)
        x = torch.as_tensor(x)
        if x.dim() != 2:
            raise WeightspaceError(f"{where}: token ids have shape {tuple(x.shape)}, expected (N, L) — one row of ids "
                                   "per sentence.")
        x, y = check_support(x, y, tuple(x.shape[1:]), self.n_classes, where)
        if not torch.equal(x, x.round()) or x.min() < 0 or x.max() >= VOCAB_SIZE:
            raise WeightspaceError(f"{where}: token ids must be whole numbers from 0 to {VOCAB_SIZE - 1}.")
        return x, y

    def encode(self, task_or_support) -> torch.Tensor:
        x, y = self.check(*support_of(task_or_support))
        return self.encode_support(x[None], y[None])[0]

    def raw(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, C * 384) unscaled prototypes of B support sets x (B, S, *input), y (B, S)."""
        b, s = y.shape
        emb = frozen_embeddings(self.arch, x.reshape(b * s, *x.shape[2:])).reshape(b, s, -1)
        return class_prototypes(emb, y, self.n_classes)

    def fit(self, arch, params, tasks: Sequence[Task], family: Any = None) -> "TextSupportEncoder":
        layer = getattr(family, "hidden_layer", None) if getattr(family, "inputs", None) == "hidden" else None
        if self.arch.inputs == "hidden" and layer is not None and layer != self.arch.first_layer:
            raise WeightspaceError(f"the {family.name} family's hidden inputs enter layer {layer} but the LoRA "
                                   f"architecture starts at layer {self.arch.first_layer}; build both with one layer.")
        # Statistics of the zoo's own support sets, one per distinct task (they may differ in size)
        raw = []
        for t in unique_tasks(tasks):
            x, y = self.check(t.support_x, t.support_y, f"support set of zoo task {t.task_id}")
            raw.append(self.raw(x[None], y[None]))
        return self.fit_scale(torch.cat(raw))

    def encode_support(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fitted_scale()(self.raw(x, y))

    def config(self) -> dict:
        return {"name": self.name, "arch": self.arch.to_dict(), "whiten": self.whiten, "dim": self.dim}

    @classmethod
    def from_state(cls, config: Mapping, state: Mapping[str, torch.Tensor]) -> "TextSupportEncoder":
        return cls(arch_from_dict(config["arch"]), int(config.get("whiten", 0)), ZooScale.from_state(state))


# ----- descriptions ----------------------------------------------------------------------------
def description_of(item: Any, name: str) -> str:
    """The description text of a task, or the text itself; a clear error for anything else."""
    if isinstance(item, tuple):
        raise WeightspaceError(f"the {name} condition needs a task description, not a bare support set; "
                               "pass the task (or its description text) instead.")
    text = item.description if isinstance(item, Task) else item
    if not isinstance(text, str) or not text.strip():
        where = f"task {item.task_id!r}" if isinstance(item, Task) else "the request"
        raise WeightspaceError(f"{where} has no description text; the {name} condition needs a short sentence "
                               "describing the task.")
    return text


@register_condition("text-description", pretty="MiniLM embedding of the task description",
                    paper="Text-to-LoRA (Charakorn et al. 2025): weights from the embedding of a task's description")
class TextDescriptionEncoder(ZooScaled, ConditionEncoder):
    """The frozen MiniLM embedding of the task's description, standardised over the zoo.

    Works for any architecture whose tasks carry descriptions (the text is embedded on its own);
    ``max_length`` (tokens kept) is the architecture's when it has one, else 32.
    """

    kind = "text"

    def __init__(self, max_length: int = 32, whiten: int = 0, scale: ZooScale | None = None):
        self.max_length, self.whiten, self.scale = int(max_length), int(whiten), scale

    @classmethod
    def create(cls, arch: Architecture, whiten: int = 0, **cfg: Any) -> "TextDescriptionEncoder":
        whiten = _whiten_option(cls.name, whiten, cfg)
        max_length = arch.max_length if isinstance(arch, LoRAMiniLM) else 32  # MiniLM's own length when it is the backbone
        return cls(max_length, whiten)

    def embedding_frame(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        scale = self.fitted_scale()
        return (scale.mean, scale.std) if scale.projection is None else None

    def raw(self, items: Sequence[Any]) -> torch.Tensor:
        return embed_texts([description_of(i, self.name) for i in items], self.max_length)

    def fit(self, arch, params, tasks: Sequence[Task], family: Any = None) -> "TextDescriptionEncoder":
        return self.fit_scale(self.raw(unique_tasks(tasks)))

    def encode(self, task_or_text) -> torch.Tensor:
        """(dim,) code of a task (its ``description``) or of a description string."""
        return self.encode_many([task_or_text])[0]

    def encode_many(self, items: Sequence[Any]) -> torch.Tensor:
        return self.fitted_scale()(self.raw(items))

    def encode_tasks(self, tasks: Sequence[Task]) -> torch.Tensor:
        unique = unique_tasks(tasks)
        codes = dict(zip((t.task_id for t in unique), self.encode_many(unique), strict=True))
        return torch.stack([codes[t.task_id] for t in tasks])

    def config(self) -> dict:
        return {"name": self.name, "max_length": self.max_length, "whiten": self.whiten, "dim": self.dim}

    @classmethod
    def from_state(cls, config: Mapping, state: Mapping[str, torch.Tensor]) -> "TextDescriptionEncoder":
        return cls(int(config.get("max_length", 32)), int(config.get("whiten", 0)), ZooScale.from_state(state))


# ----- both ------------------------------------------------------------------------------------
@register_condition("text-both", pretty="support prototypes and description",
                    paper="text-support and text-description side by side (Snell et al. 2017; Charakorn et al. 2025)")
class TextBothEncoder(ConditionEncoder):
    """[text-support code, text-description code] of a task.

    Kind "text", not "support": generators resample support draws (generate/conditions.py,
    ConditionSource) only through ``encode_support(x, y)``, which carries no description, so
    this encoder could not fill its description half there. As kind "text" generators train on
    each zoo task's own support set and description; at generation time a user's different
    support set moves only the support half. ``encode`` takes a Task or (x, y, description).
    """

    kind = "text"

    def __init__(self, support: TextSupportEncoder, description: TextDescriptionEncoder):
        self.support, self.description = support, description

    @property
    def dim(self) -> int:
        return self.support.dim + self.description.dim

    @classmethod
    def create(cls, arch: Architecture, whiten: int = 0, **cfg: Any) -> "TextBothEncoder":
        whiten = _whiten_option(cls.name, whiten, cfg)  # each half keeps its own k leading directions
        return cls(TextSupportEncoder.create(arch, whiten), TextDescriptionEncoder.create(arch, whiten))

    def fit(self, arch, params, tasks: Sequence[Task], family: Any = None) -> "TextBothEncoder":
        self.support.fit(arch, params, tasks, family)
        self.description.fit(arch, params, tasks, family)
        return self

    def encode(self, task_or_triple) -> torch.Tensor:
        if isinstance(task_or_triple, Task):
            return torch.cat([self.support.encode(task_or_triple), self.description.encode(task_or_triple)])
        if isinstance(task_or_triple, tuple) and len(task_or_triple) == 3:
            x, y, text = task_or_triple
            return torch.cat([self.support.encode((x, y)), self.description.encode(text)])
        raise WeightspaceError(f"the {self.name} condition needs both a support set and a task description; "
                               "pass the task, or (x, y, description).")

    def encode_tasks(self, tasks: Sequence[Task]) -> torch.Tensor:
        return torch.cat([self.support.encode_tasks(tasks), self.description.encode_tasks(tasks)], dim=1)

    def config(self) -> dict:
        return {"name": self.name, "dim": self.dim, "support": self.support.config(),
                "description": self.description.config()}

    def state(self) -> dict[str, torch.Tensor]:
        halves = {"support.": self.support.state(), "description.": self.description.state()}
        return {prefix + k: v for prefix, state in halves.items() for k, v in state.items()}

    @classmethod
    def from_state(cls, config: Mapping, state: Mapping[str, torch.Tensor]) -> "TextBothEncoder":
        def half(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

        return cls(TextSupportEncoder.from_state(config["support"], half("support.")),
                   TextDescriptionEncoder.from_state(config["description"], half("description.")))
