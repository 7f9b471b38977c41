"""How LoRA members train: one LoRA set (adapters + head) per text task, with PEFT's semantics.

PEFT semantics: A starts kaiming-uniform, B at zero (so training starts from the base model),
ΔW = (alpha/r) B A, no LoRA dropout, the base model frozen and in eval mode. AdamW on the
adapters; the head (on a unit-norm embedding, so it needs larger logits) gets its own rate.

The fast path (``cache=True``): activations entering the first adapted layer are computed once
for the task's sentences, and each step runs only the adapted layers. Batches are cut to their
longest sentence. One torch thread per process; parallelism comes from worker processes.

``LoRATrainer`` is the architecture's ``member_trainer`` (nets.base.MemberTrainer): ``zoo build``
calls it in its workers, so LoRA zoos get the one builder's plan, resume checks and backends.
Each member's metrics: train/test accuracy and loss of the head trained with the adapter, and
``probe_acc``, the MTEB-style score of a logistic-regression probe on the adapted embeddings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from torch import nn

from weightspace.config import option
from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture, MemberTrainer
from weightspace.nets.lora_minilm import forward as lora
from weightspace.nets.lora_minilm.base_model import PAD_ID, BaseModel, HiddenCache, base_model
from weightspace.training_loop import TrainState, train


@dataclass
class LoRATrainConfig:
    steps: int = option(100, "optimizer steps; accuracy saturates near 100 on chatterbot tasks (measured)")
    batch_size: int = option(16, "sentences per step")
    lr: float = option(3e-3, "AdamW learning rate of the LoRA A and B matrices")
    head_lr: float = option(3e-2, "AdamW learning rate of the classification head")
    weight_decay: float = option(0.0, "AdamW weight decay (PEFT examples use 0 for LoRA)")
    cache: bool = option(True, "cache the frozen lower layers' activations once per task (same maths, faster)")


@dataclass
class Batchable:
    """Inputs of one training or evaluation set: cached activations (or ids) and a mask."""

    inputs: torch.Tensor  # (N, L, 384) activations entering layer `start`, or (N, L) token ids
    mask: torch.Tensor  # (N, L) bool
    start: int | None  # None: inputs are token ids (no cache)


def prepare(arch: Architecture, ids: torch.Tensor, cache: bool, model: BaseModel,
            hidden_cache: HiddenCache | None = None) -> Batchable:
    """``ids`` are token ids, or hidden inputs already (``arch.inputs == "hidden"``)."""
    if arch.inputs == "hidden":
        hidden, mask = lora.split_hidden(ids)
        return Batchable(hidden, mask, arch.first_layer)
    mask = ids != PAD_ID
    if not cache:
        return Batchable(ids, mask, None)
    hidden = hidden_cache.get(ids, arch.first_layer) if hidden_cache else model.lower_hidden(ids, arch.first_layer)
    return Batchable(hidden, mask, arch.first_layer)


def batch_embeddings(arch: Architecture, params: Mapping[str, torch.Tensor], data: Batchable, idx,
                     model: BaseModel) -> torch.Tensor:
    x, mask = data.inputs[idx], data.mask[idx]
    if data.start is None:
        return lora.embeddings(arch, params, x, model)
    return lora.embeddings_from_hidden(arch, params, x, mask, start=data.start, model=model)


def _batches(n: int, batch_size: int, steps: int, g: torch.Generator):
    """``steps`` index batches drawn epoch by epoch from seeded permutations."""
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        while order.numel() < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=g)])
        yield order[:batch_size]
        order = order[batch_size:]


def train_lora(arch: Architecture, ids: torch.Tensor, y: torch.Tensor, seed: int, cfg: LoRATrainConfig,
               init: Mapping[str, torch.Tensor] | None = None, model: BaseModel | None = None,
               hidden_cache: HiddenCache | None = None) -> tuple[dict[str, torch.Tensor], float]:
    """LoRA set trained on (ids, y); returns the weights and the wall seconds (cache included)."""
    if ids.shape[0] == 0 or ids.shape[0] != y.shape[0]:
        raise WeightspaceError(f"LoRA training needs as many labels as sentences (got {ids.shape[0]} and {y.shape[0]}).")
    if int(y.max()) >= arch.n_classes or int(y.min()) < 0:
        raise WeightspaceError(f"labels must lie in 0..{arch.n_classes - 1} for this LoRA head.")
    t0 = time.perf_counter()
    model = model or base_model(arch.max_length)
    data = prepare(arch, ids, cfg.cache, model, hidden_cache)
    start = init if init is not None else arch.init_params(seed)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in start.items()}
    adapter = [p for k, p in params.items() if not k.startswith("head.")]
    head = [params["head.weight"], params["head.bias"]]
    opt = torch.optim.AdamW([{"params": adapter, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}],
                            weight_decay=cfg.weight_decay)
    batches = _batches(ids.shape[0], min(cfg.batch_size, ids.shape[0]), cfg.steps, torch.Generator().manual_seed(int(seed)))

    def cross_entropy(step: int) -> torch.Tensor:
        idx = next(batches)
        return nn.functional.cross_entropy(lora.head(params, batch_embeddings(arch, params, data, idx, model)), y[idx])

    train(TrainState(adapter + head, opt), cross_entropy, cfg.steps)
    return {k: v.detach() for k, v in params.items()}, time.perf_counter() - t0


@torch.no_grad()
def embed(arch: Architecture, adapters: Mapping[str, torch.Tensor], ids: torch.Tensor, cache: bool = True,
          model: BaseModel | None = None, hidden_cache: HiddenCache | None = None, batch: int = 256) -> torch.Tensor:
    """(N, 384) adapted, normalised sentence embeddings of N inputs (the head is not read)."""
    model = model or base_model(arch.max_length)
    data = prepare(arch, ids, cache, model, hidden_cache)
    return torch.cat([batch_embeddings(arch, adapters, data, torch.arange(s, min(s + batch, ids.shape[0])), model)
                      for s in range(0, ids.shape[0], batch)])


@torch.no_grad()
def evaluate_lora(arch: Architecture, params: Mapping[str, torch.Tensor], ids: torch.Tensor, y: torch.Tensor,
                  cache: bool = True, model: BaseModel | None = None, hidden_cache: HiddenCache | None = None,
                  batch: int = 256) -> tuple[float, float, torch.Tensor]:
    """(accuracy, mean cross-entropy, adapted sentence embeddings) of a LoRA set on (ids, y)."""
    emb = embed(arch, params, ids, cache, model, hidden_cache, batch)
    logits = lora.head(params, emb)
    loss = nn.functional.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).float().mean().item()
    return acc, loss, emb


def probe_accuracy(train_emb: torch.Tensor, y_train: torch.Tensor, test_emb: torch.Tensor, y_test: torch.Tensor,
                   C: float = 1.0) -> float:
    """MTEB-style classification score: a logistic-regression probe fitted on the training
    embeddings, scored by accuracy on the test embeddings."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=1000)
    clf.fit(train_emb.numpy(), y_train.numpy())
    return float(np.mean(clf.predict(test_emb.numpy()) == y_test.numpy()))


def train_on_task(arch: Architecture, task, seed: int, cfg: LoRATrainConfig, on: str = "train",
                  model: BaseModel | None = None, hidden_cache: HiddenCache | None = None
                  ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Train on the task's training set (``on="train"``) or its support set (``on="support"``)
    and measure it: train/test accuracy and loss of the head, the MTEB-style probe accuracy on
    the adapted embeddings, and the training seconds."""
    if on not in ("train", "support"):
        raise WeightspaceError(f"train on 'train' or 'support', not {on!r}.")
    model = model or base_model(arch.max_length)
    hidden_cache = hidden_cache or HiddenCache(model)
    x, y = (task.x_train, task.y_train) if on == "train" else (task.support_x, task.support_y)
    params, seconds = train_lora(arch, x, y, seed, cfg, model=model, hidden_cache=hidden_cache)
    return params, measure(arch, params, task, cfg.cache, model, hidden_cache, seconds=seconds, fitted_on=(x, y))


def measure(arch: Architecture, params: Mapping[str, torch.Tensor], task, cache: bool = True,
            model: BaseModel | None = None, hidden_cache: HiddenCache | None = None, seconds: float = 0.0,
            fitted_on: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, float]:
    """Metrics of any LoRA set (trained, generated, retrieved) on a task. The probe is fitted on
    the task's full training set: it scores the adapted embedding, not the head."""
    model = model or base_model(arch.max_length)
    x_fit, y_fit = fitted_on if fitted_on is not None else (task.x_train, task.y_train)
    train_acc, train_loss, _ = evaluate_lora(arch, params, x_fit, y_fit, cache, model, hidden_cache)
    _, _, emb_train = evaluate_lora(arch, params, task.x_train, task.y_train, cache, model, hidden_cache)
    test_acc, test_loss, emb_test = evaluate_lora(arch, params, task.x_test, task.y_test, cache, model, hidden_cache)
    return {"train_acc": train_acc, "train_loss": train_loss, "test_acc": test_acc, "test_loss": test_loss,
            "probe_acc": probe_accuracy(emb_train, task.y_train, emb_test, task.y_test), "seconds": seconds}


def check_inputs(arch: Architecture, family) -> None:
    """The LoRA's inputs must be what the family makes: token ids, or activations entering
    exactly the first adapted layer."""
    inputs, layer = getattr(family, "inputs", "ids"), getattr(family, "hidden_layer", None)
    if arch.inputs != inputs or (inputs == "hidden" and layer != arch.first_layer):
        raise WeightspaceError(
            f"the LoRA takes {arch.inputs} inputs from layer {arch.first_layer}, the family makes {inputs}"
            + (f" from layer {layer}" if inputs == "hidden" else "")
            + "; build both with the same inputs (and hidden_layer = the lowest adapted layer).")


class LoRATrainer(MemberTrainer):
    """``train_on_task`` for every member of a zoo chunk, with one frozen base model per process."""

    config_class = LoRATrainConfig
    init_label = "independent:peft"  # A kaiming-uniform, B = 0: every member starts at the base model

    def check(self, arch: Architecture, family, cfg: LoRATrainConfig) -> None:
        if arch.n_classes != family.n_classes:
            raise WeightspaceError(f"the LoRA head has {arch.n_classes} classes, the family's tasks have {family.n_classes}.")
        check_inputs(arch, family)

    def train_tasks(self, arch: Architecture, tasks, seeds, cfg: LoRATrainConfig):
        model = base_model(arch.max_length)
        cache = HiddenCache(model, capacity=4)
        out = []
        for task, seed in zip(tasks, seeds):
            params, metrics = train_on_task(arch, task, seed, cfg, model=model, hidden_cache=cache)
            out.append((params, {k: v for k, v in metrics.items() if k != "seconds"}, float(metrics["seconds"])))
        return out

    def fit(self, arch: Architecture, x: torch.Tensor, y: torch.Tensor, seed: int, cfg: LoRATrainConfig):
        return train_lora(arch, x, y, seed, cfg, model=base_model(arch.max_length))[0]


LORA_TRAINER = LoRATrainer()
