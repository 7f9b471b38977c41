"""The methods a generator is compared with, each producing weights for every held-out task
together with the wall time it took to get them.

Kinds (the ``kind`` field of every method, used by the verdict and the report):

- ``generator``     a fitted weight generator, conditioned as it was trained
- ``reference``     a model trained on the held-out task itself
- ``retrieval``     the zoo member with the lowest support-set loss
- ``oracle``        the zoo member with the nearest task descriptor (needs knowledge a user
                    may not have; a line to read, never a baseline to beat)
- ``memorization``  interpolation of the two nearest members, the zoo mean, noisy copies,
                    averages of random members, per-coordinate and PCA Gaussians
- ``finetune``      fine-tuning from the best zoo start or from generated weights (finetuning.py)
- ``fewshot``       trained from scratch on the support set only (LoRA zoos: the frozen-embedding
                    probe and a support-set LoRA; feature_baselines.py)
- ``majority``      predicts the most frequent class of the task's training labels for every
                    input: the floor that accuracy on an imbalanced subset task must clear
- ``multitask``     one network trained jointly on the zoo tasks' data, told the task by its
                    descriptor (adapt/multitask.py): the non-generative use of the same zoo
- ``merging``       one model merged from all zoo members' task vectors (task arithmetic, TIES;
                    merged.py, for shared-start zoos and LoRA's ΔW alike), a baseline
                    to beat like the memorization ones

Each baseline registers here (or in feature_baselines.py, merged.py) with the paper it follows
and what it needs from a zoo (baseline_registry.py); the harness runs those that apply.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from weightspace.adapt.interpolate import aligned_interpolation
from weightspace.adapt.merging import zoo_mean
from weightspace.adapt.retrieval import nearest_by_descriptor, nearest_by_support, support_losses
from weightspace.evaluate.baseline_registry import register_baseline
from weightspace.evaluate.baselines import CoordinateGaussian, PCAGaussian, member_average, noisy_copy
from weightspace.evaluate.context import ZooContext
from weightspace.errors import WeightspaceError
from weightspace.evaluate.cost import forward_flops
from weightspace.registry import always

Weights = dict[str, torch.Tensor]
REPEAT_UNDER_SECONDS = 0.1  # add_timed: calls slower than this are timed once


@dataclass
class Method:
    key: str
    kind: str
    label: str
    description: str
    weights: list[Weights] = field(default_factory=list)  # one per held-out task
    seconds: list[float] = field(default_factory=list)  # per task: wall time to obtain the weights
    flops: list[float | None] = field(default_factory=list)  # per task, approximate; None = not computable
    setup_seconds: float = 0.0  # one-off cost shared by all tasks (fitting, aligning the zoo)
    info: dict[str, Any] = field(default_factory=dict)  # kind-specific facts (start, data, steps)

    def add(self, weights: Weights, seconds: float, flops: float | None = None) -> None:
        self.weights.append(weights)
        self.seconds.append(seconds)
        self.flops.append(flops)

    def add_timed(self, make: Callable[[], Weights], flops: float | None = None, before: float = 0.0,
                  repeats: int = 1) -> None:
        """``make()``'s weights, charged its wall time plus ``before`` seconds already spent on them.

        ``repeats`` > 1 (only for a ``make`` that returns the same weights every call, e.g. seeded
        sampling) charges the median of up to that many calls, each made after the previous call's
        weights are released, and keeps the last call's weights: the steady-state time of one
        request. A single call would also charge faulting in fresh memory for the output, because
        the harness keeps every method's weights for scoring; a serving process frees each model
        once it is sent, and fine-tuning's seconds per step are a steady-state mean after warm-up
        (adapt.finetune.seconds_per_step). A first call over ``REPEAT_UNDER_SECONDS`` is not
        repeated: its memory costs are noise beside it.
        """
        times, weights = [], None
        for _ in range(max(repeats, 1)):
            weights = None  # release the previous call's output before the next is timed
            began = time.perf_counter()
            weights = make()
            times.append(time.perf_counter() - began)
            if times[0] > REPEAT_UNDER_SECONDS:
                break
        self.add(weights, before + statistics.median(times), flops)


@dataclass
class Retrieved:
    """Per task: zoo members ranked by support loss, and how long ranking took."""

    ranked: list[torch.Tensor]  # per task, member indices best first (top few)
    seconds: list[float]
    flops: list[float]  # forward passes of every zoo member over the support set


def rank_by_support(ctx: ZooContext, keep: int = 2) -> Retrieved:
    out = Retrieved([], [], [])
    m = len(ctx.records)
    support_losses(ctx.arch, ctx.params, ctx.tasks[0])  # warm-up: the first vmap call pays one-off setup
    for task in ctx.tasks:
        began = time.perf_counter()
        ranked = nearest_by_support(support_losses(ctx.arch, ctx.params, task), k=keep)
        out.seconds.append(time.perf_counter() - began)
        out.ranked.append(ranked)
        out.flops.append(forward_flops(ctx.n_params, m * len(task.support_y)))
    return out


@register_baseline("retrieval", pretty="retrieval by support loss, and the descriptor oracle",
                   paper="choosing a zoo model by its loss on the target data, as model-zoo transfer selection "
                         "(Renggli et al. 2022, which model to transfer?)",
                   applies=always, position=10)
def retrieval_methods(ctx: ZooContext, ret: Retrieved, cfg=None) -> list[Method]:
    retrieval = Method("retrieval", "retrieval", "retrieval (support loss)",
                       "the zoo member with the lowest loss on the task's support set")
    oracle = Method("oracle:descriptor", "oracle", "oracle: descriptor-nearest member",
                    "the zoo member whose task descriptor is nearest (uses the held-out descriptor, "
                    "which a user may not have); shown for reference, not a baseline")
    for task, ranked, secs, fl in zip(ctx.tasks, ret.ranked, ret.seconds, ret.flops):
        retrieval.add(ctx.member(int(ranked[0])), secs, fl)
        oracle.add_timed(lambda: ctx.member(int(nearest_by_descriptor(ctx.descriptors, ctx.descriptor_of(task))[0])), 0.0)
    return [retrieval, oracle]


@register_baseline("memorization", pretty="memorization baselines (interpolation, zoo mean, noisy copies, "
                                          "averages, Gaussians)",
                   paper="p-diff's memorization checks (Wang et al. 2024): zoo members plus noise; interpolation "
                         "after weight matching (Git Re-Basin, Ainsworth et al. 2023); weight averages (model soups, "
                         "Wortsman et al. 2022); Gaussians fitted to the zoo (PCA: Schürholt et al. 2022)",
                   applies=always, position=20)
def memorization_methods(ctx: ZooContext, ret: Retrieved, cfg) -> list[Method]:
    """Interpolation, zoo mean and the memorization baselines (``cfg.noise_sigmas``, ``cfg.average_k``);
    randomness seeded per task."""
    sigmas, average_k, seed = cfg.noise_sigmas, cfg.average_k, cfg.seed
    m = len(ctx.records)
    interp = Method("interpolation", "memorization", "interpolation of 2 nearest (aligned)",
                    "mean of the two lowest-support-loss members after weight matching the second to the first")
    mean = Method("zoo-mean", "memorization", "zoo mean" + (" (aligned)" if ctx.aligned else ""),
                  "the mean of all zoo members" + (" after barycentre alignment" if ctx.aligned else " (shared init)"),
                  setup_seconds=ctx.align_seconds)
    noise = [Method(f"noise:{s:g}", "memorization", f"retrieved + noise σ={s:g}",
                    f"the retrieved member plus Gaussian noise, σ = {s:g} x each tensor's zoo std") for s in sigmas]
    avg = Method(f"average:{average_k}", "memorization", f"average of {min(average_k, m)} random (aligned)",
                 f"the mean of {min(average_k, m)} random zoo members in the common frame", setup_seconds=ctx.align_seconds)
    began = time.perf_counter()
    coord = CoordinateGaussian.fit(ctx.spec, ctx.framed)
    coord_m = Method("coordinate-gaussian", "memorization", "per-coordinate Gaussian",
                     "an independent Gaussian per weight, fitted to the (aligned) zoo",
                     setup_seconds=ctx.align_seconds + time.perf_counter() - began)
    began = time.perf_counter()
    pca = PCAGaussian.fit(ctx.spec, ctx.framed)
    pca_m = Method("pca-gaussian-baseline", "memorization", f"PCA-Gaussian ({pca.n_components} comps)",
                   "an unconditional Gaussian in the (aligned) zoo's PCA space",
                   setup_seconds=ctx.align_seconds + time.perf_counter() - began)
    the_mean = zoo_mean(ctx.framed)
    for t, (ranked, secs, fl) in enumerate(zip(ret.ranked, ret.seconds, ret.flops)):
        g = torch.Generator().manual_seed(seed * 100_003 + t)
        best = ctx.member(int(ranked[0]))
        interp.add_timed(lambda: aligned_interpolation(ctx.spec, best, ctx.member(int(ranked[min(1, len(ranked) - 1)])),
                                                       seed=seed), fl, before=secs)
        mean.add(the_mean, 0.0, 0.0)
        for meth, s in zip(noise, sigmas):
            meth.add_timed(lambda: noisy_copy(best, ctx.tensor_std, s, g), fl, before=secs)
        avg.add_timed(lambda: member_average(ctx.framed, average_k, g))
        coord_m.add_timed(lambda: _first(coord.sample(1, g)))
        pca_m.add_timed(lambda: _first(pca.sample(1, g)))
    return [interp, mean, *noise, avg, coord_m, pca_m]


def expresses_a_constant(ctx: ZooContext) -> bool:
    """The architecture has weights that predict one class for every input (``constant_params``)."""
    return ctx.arch.constant_params(0) is not None


@register_baseline("majority", pretty="majority class",
                   paper="the majority-class (ZeroR) predictor, the floor of any classifier (Witten, Frank & Hall, "
                         "Data Mining, 3rd ed. 2011)",
                   applies=expresses_a_constant, position=40)
def majority_method(ctx: ZooContext, ret: Retrieved | None = None, cfg=None) -> list[Method]:
    """The constant predictor of each task's most frequent training class (where ``expresses_a_constant``)."""
    majority = Method("majority", "majority", "majority class",
                      "predicts the most frequent class of the task's training labels for every input")
    for task in ctx.tasks:
        label = lambda: int(torch.bincount(task.y_train, minlength=task.n_classes).argmax())  # noqa: E731
        majority.add_timed(lambda: ctx.arch.constant_params(label()), 0.0)
    return [majority]


def conditions_a_head_on_descriptors(ctx: ZooContext) -> bool:
    """A plain output layer to make linear in the task's descriptor, descriptor features to put
    there, and a head that is not refitted per task (where it is, the probe baselines cover it)."""
    from weightspace.adapt.multitask import head_names

    if ctx.arch.head_refit or ctx.descriptors.shape[1] == 0:
        return False
    try:
        head_names(ctx.arch)
    except WeightspaceError:
        return False
    return True


def multitask_wanted(cfg) -> bool:
    return cfg.multitask_tasks >= 0  # -1 switches the multi-task baseline off


@register_baseline("multitask", pretty="multi-task network (descriptor)",
                   paper="multitask learning (Caruana 1997): one network on every zoo task's data, its output layer "
                         "linear in the task's descriptor",
                   applies=conditions_a_head_on_descriptors, enabled=multitask_wanted, position=60)
def multitask_methods(ctx: ZooContext, ret: Retrieved, cfg) -> list[Method]:
    """A multi-task network on (up to ``cfg.multitask_tasks`` evenly spaced) zoo tasks, conditioned on
    the standardised descriptor features, trained with the zoo's recipe for twice the members' steps
    (it serves every task at once). Where ``conditions_a_head_on_descriptors``."""
    from weightspace.adapt.multitask import fit_multitask

    max_tasks, seed = cfg.multitask_tasks, cfg.seed
    ids = sorted({r.task_id for r in ctx.records})
    if max_tasks and len(ids) > max_tasks:
        ids = [ids[round(i * (len(ids) - 1) / (max_tasks - 1))] for i in range(max_tasks)] if max_tasks > 1 else ids[:1]
    tasks = [ctx.family.task(t) for t in ids]  # built once: the family's task cache holds fewer than 128
    feats = torch.stack([ctx.descriptor_of(t) for t in tasks]).float()
    mean, std = feats.mean(0), feats.std(0).clamp_min(1e-6)
    init = shared_base(ctx) or ctx.arch.init_params(seed)
    recipe = ctx.train_cfg
    steps = 2 * recipe.steps
    net = fit_multitask(ctx.arch, tasks, (feats - mean) / std, init, steps=steps, lr=recipe.lr,
                        batch_size=recipe.batch_size, seed=seed)
    m = Method("multitask:descriptor", "multitask", "multi-task network (descriptor)",
               f"one network trained on {len(ids)} zoo tasks' data at once, its output layer linear in the "
               "task's descriptor", setup_seconds=net.seconds, info={"zoo_tasks": len(ids), "steps": steps})
    for task in ctx.tasks:
        m.add_timed(lambda: net.weights_for((ctx.descriptor_of(task).float() - mean) / std), 0.0)
    return [m]


def _first(stacked: Weights) -> Weights:
    return {n: v[0] for n, v in stacked.items()}


def has_shared_start(ctx: ZooContext) -> bool:
    """The members share one start (a shared-init zoo, no alignment needed) recorded in base.safetensors."""
    return not ctx.aligned and (ctx.zoo.path / "base.safetensors").is_file()


def shared_base(ctx: ZooContext) -> Weights | None:
    """A shared-init zoo's members start from base.safetensors; references then start there too."""
    if not has_shared_start(ctx):
        return None
    from weightspace.io import load_safetensors

    return load_safetensors(ctx.zoo.path / "base.safetensors")[0]
