"""Baselines for an architecture whose head is refitted per task on its features (``arch.head_refit``;
so far LoRA sets of the frozen MiniLM), as evaluation Methods. They register as one baseline that
applies by that declared capability (baseline_registry), never by the architecture's name.

Every method returns, per held-out task, a full weight set of the zoo's space and the wall seconds
a user would wait for it, support-set features included. In the words of their papers:

- ``probe``            MTEB's classification protocol: logistic regression on the frozen
                       features of the support set. As weights: every low-rank update zero
                       (ΔW = 0: the frozen backbone) and the regression as the head.
- ``support-lora``     a member trained from the architecture's own init on the support set
                       alone by its ``member_trainer``, with the zoo's own recipe: what
                       fine-tuning gives with only the data a user has.
- ``task-arithmetic``, ``ties``   merged.py's merges, λ picked by the support loss of a refitted head.

Keys and wording are those of the first such architecture (LoRA), so results stay comparable.
"""

from __future__ import annotations

import time

import torch

from weightspace.adapt.head_refit import refit_head
from weightspace.adapt.multitask import head_names
from weightspace.adapt.task_vectors import plain_tensors
from weightspace.config import from_mapping, to_dict
from weightspace.errors import WeightspaceError
from weightspace.evaluate.baseline_registry import register_baseline
from weightspace.evaluate.context import recorded_train_config
from weightspace.evaluate.merged import merge_methods
from weightspace.evaluate.methods import Method, Retrieved, Weights
from weightspace.evaluate.task_jobs import per_task, rebuild


def refits_head(ctx) -> bool:
    return ctx.arch.head_refit


@register_baseline("frozen-features", pretty="frozen-feature baselines (probe, support-set member, merges)",
                   paper="MTEB's classification protocol (Muennighoff et al. 2023); LoRA (Hu et al. 2021) trained on "
                         "the support set; task arithmetic (Ilharco et al. 2023) and TIES (Yadav et al. 2023) with "
                         "the head refitted per task",
                   applies=refits_head, position=30)
def feature_baselines(ctx, ranked: Retrieved, cfg) -> list[Method]:
    return feature_methods(ctx, cfg.seed)


def feature_methods(ctx, seed: int = 0) -> list[Method]:
    """The probe, the support-set member and the merges for every task of ``ctx``."""
    if not ctx.arch.head_refit:
        raise WeightspaceError(f"the feature baselines need an architecture whose head is refitted on its features "
                               f"(a LoRA zoo); this zoo's architecture is {ctx.arch.name!r}.")
    frozen = frozen_weights(ctx.arch)
    if ctx.tasks and frozen is not None:  # warm-up outside the clock: the first forward pays one-off setup
        ctx.arch.features(frozen, ctx.tasks[0].support_x)
    return [*probe_method(ctx, frozen), *support_fit_method(ctx, seed), *merge_methods(ctx)]


def frozen_weights(arch) -> Weights | None:
    """Every low-rank update zero (the frozen backbone's features), or None where the body has
    tensors outside the low-rank pairs (then "frozen" has no closed form)."""
    if not arch.low_rank_pairs() or plain_tensors(arch, head_names(arch)):
        return None
    paired = {n for p in arch.low_rank_pairs() for n in (p.a, p.b)}
    return {t.name: torch.zeros(t.shape) for t in arch.spec().tensors if t.name in paired}


def probe_method(ctx, frozen: Weights | None) -> list[Method]:
    if frozen is None:
        return []
    method = Method("probe", "fewshot", "logistic probe on frozen embeddings",
                    "MTEB-style: logistic regression (C=1) on the frozen model's normalised mean-pooled embeddings "
                    "of the support set, as a LoRA set with ΔW = 0 and the regression as its head")
    for task in ctx.tasks:
        method.add_timed(lambda: refit_head(ctx.arch, frozen, task.support_x, task.support_y)[0])
    return [method]


def support_fit_method(ctx, seed: int) -> list[Method]:
    """The support-set LoRA of every task, one job per task on ``ctx.pool`` when there is one;
    each task's seconds are its own fit's, measured where it ran (one torch thread)."""
    trainer = ctx.arch.member_trainer
    if trainer is None:
        return []
    cfg = recorded_train_config(ctx.records, trainer.config_class)
    method = Method("support-lora", "fewshot", "LoRA trained on the support set",
                    f"a LoRA trained from PEFT's init on the support set only, with the zoo's recipe "
                    f"({cfg.steps} steps, batch {cfg.batch_size}, lr {cfg.lr:g}, head lr {cfg.head_lr:g}), seeded per task",
                    info={"steps": cfg.steps, "seeds": []})
    extra = {"seed": seed, "recipe": to_dict(cfg)}
    for t, (weights, seconds, task_seed) in per_task(ctx, _support_fit, support_fit_job, lambda t: {}, extra,
                                                     getattr(ctx, "pool", None), None):
        method.add({k: torch.as_tensor(v).clone() for k, v in weights.items()}, seconds)
        method.info["seeds"].append(task_seed)
    return [method]


def _support_fit(job: dict) -> tuple[dict, float, int]:
    """(weights, fit seconds, seed) of a LoRA trained on ``job["task"]``'s support set."""
    from weightspace.zoo.build import member_seed

    arch, task = job["arch"], job["task"]
    trainer = arch.member_trainer
    cfg = from_mapping(trainer.config_class, job["recipe"], where="the zoo's training recipe")
    task_seed = member_seed(job["seed"], "support:" + task.task_id, 0)
    began = time.perf_counter()
    weights = trainer.fit(arch, task.support_x, task.support_y, task_seed, cfg)
    return weights, time.perf_counter() - began, task_seed


def support_fit_job(payload: dict) -> tuple[dict, float, int]:
    """A worker's job: ``_support_fit`` on the rebuilt task, the weights as numpy."""
    weights, seconds, task_seed = _support_fit(rebuild(payload))
    return {k: v.detach().numpy() for k, v in weights.items()}, seconds, task_seed
