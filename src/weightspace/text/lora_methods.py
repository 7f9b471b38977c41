"""LoRA baselines that generated adapters are judged beside, as evaluation Methods.

Every method returns, per held-out task, a full LoRA set of the zoo's weight space (A/B per
adapted module + head) and the wall seconds a user would wait for it, support-set embedding
included. Methods, in the words of their papers:

- ``probe``            MTEB's classification protocol: logistic regression on the frozen
                       sentence embeddings of the support set. As a LoRA set: ΔW = 0 and the
                       head = the regression (the head sits on exactly that embedding).
- ``support-lora``     a LoRA trained from PEFT's init on the support set alone, with the zoo's
                       own recipe: what fine-tuning gives with only the data a user has.
- ``task-arithmetic``  Ilharco et al. 2023, "Editing Models with Task Arithmetic": the sum of
                       the zoo's task vectors, scaled by λ.
- ``ties``             Yadav et al. 2023, "TIES-Merging": trim each task vector to its largest
                       entries, elect a sign per entry, average the entries that agree.

Task vectors: every zoo member starts at ΔW = 0 (PEFT's B = 0), so a member's task vector is
its ΔW = (alpha/r) B A per module. A merge of several rank-r updates has higher rank; it is
brought back into the zoo's rank-r space by truncated SVD (the best rank-r approximation,
Eckart-Young). Merges depend on the zoo only: they are computed once (``setup_seconds``); per
task, λ is picked from a small grid by the support-set loss of a head fitted by logistic
regression on the support embeddings under the merged adapter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from weightspace.config import from_mapping
from weightspace.adapt.task_vectors import TIES_KEEP, task_arithmetic, ties_merge, trim  # noqa: F401 (trim: tests)
from weightspace.errors import WeightspaceError
from weightspace.evaluate.methods import Method, Retrieved, Weights
from weightspace.text.base_model import BaseModel, base_model
from weightspace.text.lora_arch import LoRAMiniLM
from weightspace.text.lora_train import LoRATrainConfig, evaluate_lora, train_lora

NEVER = -1e4  # head bias of a class absent from the support set: finite, and never the argmax
# λ grids, wide enough that the support-loss minimum fell inside them on a 24-member chatterbot zoo
# (small λ tends to the frozen model, i.e. the probe; large λ distorts the embedding).
ARITHMETIC_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # λ x M: 1/M is the mean task vector
TIES_GRID = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # the TIES vector has one task vector's scale (paper: λ≈1)

Delta = dict[tuple[int, str], torch.Tensor]  # (layer, module) -> (d_out, d_in)


# ----- heads fitted by logistic regression ------------------------------------------------------
def fit_head(emb: torch.Tensor, y: torch.Tensor, n_classes: int, C: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A linear head (n_classes, d), (n_classes,) equal to sklearn's LogisticRegression on (emb, y).

    sklearn's binary model has one logit z for classes_[1] against classes_[0]; rows giving
    logits [0, z] have the same softmax (sigmoid(z)) and argmax, so they are that model exactly."""
    from sklearn.linear_model import LogisticRegression

    labels = np.unique(y.numpy())
    if labels.size < 2:
        raise WeightspaceError(f"the support set holds only class {labels.tolist()}; fitting a head needs examples of 2 classes.")
    clf = LogisticRegression(C=C, max_iter=1000).fit(emb.double().numpy(), y.numpy())
    coef, intercept = torch.from_numpy(clf.coef_).float(), torch.from_numpy(clf.intercept_).float()
    classes = torch.as_tensor(clf.classes_, dtype=torch.long)
    weight, bias = torch.zeros(n_classes, emb.shape[1]), torch.full((n_classes,), NEVER)
    if classes.numel() == 2:
        bias[classes[0]] = 0.0
        weight[classes[1]], bias[classes[1]] = coef[0], intercept[0]
    else:
        weight[classes], bias[classes] = coef, intercept
    return weight, bias


def head_loss(emb: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> float:
    """Mean cross-entropy of a head on embeddings."""
    return float(nn.functional.cross_entropy(emb.double() @ weight.double().T + bias.double(), y))


def sentence_embeddings(arch: LoRAMiniLM, adapters: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                        model: BaseModel) -> torch.Tensor:
    """Normalised mean-pooled embeddings under the adapters, computed as the LoRA set computes them."""
    params = {**adapters, "head.weight": torch.zeros(arch.n_classes, model.hidden), "head.bias": torch.zeros(arch.n_classes)}
    return evaluate_lora(arch, params, x, y, model=model)[2]


def zero_adapters(arch: LoRAMiniLM) -> dict[str, torch.Tensor]:
    return {t.name: torch.zeros(t.shape) for t in arch.spec().tensors if not t.name.startswith("head.")}


def with_fitted_head(arch: LoRAMiniLM, adapters: Mapping[str, torch.Tensor], task, model: BaseModel
                     ) -> tuple[Weights, float]:
    """The adapters plus a head fitted on the task's support embeddings; the head's support loss."""
    return head_fitted_on(arch, adapters, task.support_x, task.support_y, model)


def head_fitted_on(arch: LoRAMiniLM, adapters: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   model: BaseModel) -> tuple[Weights, float]:
    """The adapters plus a head fitted on the embeddings of (x, y); the head's loss there."""
    emb = sentence_embeddings(arch, adapters, x, y, model)
    weight, bias = fit_head(emb, y, arch.n_classes)
    return {**adapters, "head.weight": weight, "head.bias": bias}, head_loss(emb, y, weight, bias)


# ----- merging task vectors ---------------------------------------------------------------------
class TaskVectors(Sequence):
    """Member i's task vector {(layer, module): ΔW} in float64, computed on access, so a large zoo
    is never held densely in memory (merges stream over members)."""

    def __init__(self, arch: LoRAMiniLM, stacked: Mapping[str, torch.Tensor]):
        self.arch, self.stacked = arch, stacked

    def __len__(self) -> int:
        return self.stacked[self.arch.spec().names[0]].shape[0]

    def __getitem__(self, i: int) -> Delta:
        if not 0 <= i < len(self):
            raise IndexError(i)
        return {(layer, m): self.arch.scaling * (self.stacked[f"layer{layer}.{m}.lora_B"][i].double()
                                                 @ self.stacked[f"layer{layer}.{m}.lora_A"][i].double())
                for layer, m in self.arch.targets()}


def rank_r_factors(delta: torch.Tensor, rank: int, scaling: float) -> tuple[torch.Tensor, torch.Tensor]:
    """LoRA factors (A (r, d_in), B (d_out, r)) with scaling · B A = the best rank-r approximation
    of ``delta`` (truncated SVD), in the project's canonical gauge."""
    from weightspace.symmetry.canonical import lora_canonical

    u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)
    root = (s[:rank] / scaling).sqrt()
    a, b = root[:, None] * vh[:rank], u[:, :rank] * root
    if a.shape[0] < rank:  # a module narrower than the rank: pad with zero components
        a = torch.cat([a, a.new_zeros(rank - a.shape[0], a.shape[1])])
        b = torch.cat([b, b.new_zeros(b.shape[0], rank - b.shape[1])], dim=1)
    a, b = lora_canonical(a, b)
    return a.float(), b.float()


def adapters_from_delta(arch: LoRAMiniLM, delta: Delta) -> dict[str, torch.Tensor]:
    out = {}
    for (layer, m), d in delta.items():
        out[f"layer{layer}.{m}.lora_A"], out[f"layer{layer}.{m}.lora_B"] = rank_r_factors(d, arch.rank, arch.scaling)
    return out


def scale_adapters(adapters: Mapping[str, torch.Tensor], lam: float) -> dict[str, torch.Tensor]:
    """ΔW scaled by λ > 0: both factors by √λ (the gauge stays balanced)."""
    return {k: v * math.sqrt(lam) for k, v in adapters.items()}


def merged_method(ctx, key: str, label: str, description: str, merge, grid: Sequence[float],
                  model: BaseModel, info: dict) -> Method:
    """Merge once (setup), then per task: pick λ from ``grid`` by the fitted head's support loss."""
    began = time.perf_counter()
    adapters = adapters_from_delta(ctx.arch, merge(TaskVectors(ctx.arch, ctx.params)))
    method = Method(key, "merging", label, description, setup_seconds=time.perf_counter() - began,
                    info={**info, "lambda_grid": list(grid), "lambda": [], "rank": ctx.arch.rank})
    for task in ctx.tasks:
        began = time.perf_counter()
        best = min(((*with_fitted_head(ctx.arch, scale_adapters(adapters, lam), task, model), lam) for lam in grid),
                   key=lambda found: found[1])
        method.add(best[0], time.perf_counter() - began, None)
        method.info["lambda"].append(best[2])
    return method


# ----- the methods ------------------------------------------------------------------------------
def probe_method(ctx, model: BaseModel) -> Method:
    method = Method("probe", "fewshot", "logistic probe on frozen embeddings",
                    "MTEB-style: logistic regression (C=1) on the frozen model's normalised mean-pooled embeddings "
                    "of the support set, as a LoRA set with ΔW = 0 and the regression as its head")
    zero = zero_adapters(ctx.arch)
    for task in ctx.tasks:
        began = time.perf_counter()
        weights, _ = with_fitted_head(ctx.arch, zero, task, model)
        method.add(weights, time.perf_counter() - began, None)
    return method


def zoo_recipe(ctx) -> LoRATrainConfig:
    """The LoRATrainConfig the zoo members were trained with (as recorded in the manifest)."""
    recorded = dict(ctx.records[0].optimizer or {})
    known = set(LoRATrainConfig.__dataclass_fields__)
    return from_mapping(LoRATrainConfig, {k: v for k, v in recorded.items() if k in known},
                        where="the zoo's recorded LoRA training config")


def support_seed(seed: int, task_id: str) -> int:
    from weightspace.zoo.build import member_seed

    return member_seed(seed, "support:" + task_id, 0)


def support_lora_method(ctx, seed: int, model: BaseModel) -> Method:
    cfg = zoo_recipe(ctx)
    method = Method("support-lora", "fewshot", "LoRA trained on the support set",
                    f"a LoRA trained from PEFT's init on the support set only, with the zoo's recipe "
                    f"({cfg.steps} steps, batch {cfg.batch_size}, lr {cfg.lr:g}, head lr {cfg.head_lr:g}), seeded per task",
                    info={"steps": cfg.steps, "seeds": []})
    for task in ctx.tasks:
        task_seed = support_seed(seed, task.task_id)
        began = time.perf_counter()
        weights, _ = train_lora(ctx.arch, task.support_x, task.support_y, task_seed, cfg, model=model)
        method.add(weights, time.perf_counter() - began, None)
        method.info["seeds"].append(task_seed)
    return method


def merging_methods(ctx, model: BaseModel, keep: float = TIES_KEEP) -> list[Method]:
    m = len(ctx.records)
    arithmetic = merged_method(
        ctx, "task-arithmetic", "task arithmetic (rank-r SVD)",
        f"Ilharco et al. 2023: λ · Σ ΔW_i over the {m} zoo task vectors, truncated back to rank {ctx.arch.rank} by SVD "
        f"(the sum has higher rank); λ from {{{', '.join(f'{c:g}' for c in ARITHMETIC_GRID)}}}/M picked per task by the "
        "support-set loss of a logistic-regression head fitted on the support embeddings under the merged adapter",
        task_arithmetic, [c / m for c in ARITHMETIC_GRID], model, {"members": m})
    ties = merged_method(
        ctx, "ties", f"TIES-merging (top {keep:.0%}, rank-r SVD)",
        f"Yadav et al. 2023: each of the {m} zoo task vectors trimmed to its top {keep:.0%} magnitudes, a sign elected "
        "per entry by summed magnitude, the agreeing entries averaged (disjoint mean), scaled by λ; truncated back to "
        f"rank {ctx.arch.rank} by SVD; λ from {{{', '.join(f'{c:g}' for c in TIES_GRID)}}} picked per task by the "
        "support-set loss of a logistic-regression head fitted on the support embeddings under the merged adapter",
        lambda vectors: ties_merge(vectors, keep), TIES_GRID, model, {"members": m, "keep": keep})
    return [arithmetic, ties]


def lora_methods(ctx, ranked: Retrieved | None = None, seed: int = 0) -> list[Method]:
    """The LoRA baselines (probe, support-lora, task-arithmetic, ties) for every task of ``ctx``.
    ``ranked`` (retrieval's ranking) is not needed by any of them."""
    if not isinstance(ctx.arch, LoRAMiniLM):
        raise WeightspaceError(f"the LoRA baselines need a LoRA zoo; this zoo's architecture is {ctx.arch.name!r}.")
    model = base_model(ctx.arch.max_length)
    if ctx.tasks:  # warm-up outside the clock: the first forward pays one-off setup
        sentence_embeddings(ctx.arch, zero_adapters(ctx.arch), ctx.tasks[0].support_x, ctx.tasks[0].support_y, model)
    return [probe_method(ctx, model), support_lora_method(ctx, seed, model), *merging_methods(ctx, model)]
