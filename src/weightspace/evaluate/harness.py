"""The evaluation harness: generated weights judged on held-out tasks only, beside the reference,
fine-tuning, retrieval and the memorization baselines, with novelty and cost.

Stages (each with a progress bar when asked):
 1. load the zoo, put it in one frame (barycentre alignment unless shared init), measure the
    zoo's own nearest-neighbour distances;
 2. rank zoo members by support loss per task (retrieval, interpolation, noisy copies start here),
    train the reference, and build every registered baseline that applies to this zoo
    (baseline_registry.applicable_baselines: retrieval, memorization, frozen-feature, majority,
    merging, multi-task), in their declared order;
 3. collect every method's weights per task with their wall time (each generator in several
    modes: one sample, its central output, best of K by support loss; see generated.py);
 4. fine-tune from the best zoo start and from each generator's ``finetune_from`` output
    (support set / full train set);
 5. evaluate all models on each task's test set; novelty against the zoo;
 6. cost: fine-tuning steps and seconds until it reaches each generator's accuracy;
 7. condition controls (controls.py): each conditional generator's margins over its shuffled,
    random-string and told-nothing controls (overall.controls);
 8. for architectures with features (LoRA sets), an MTEB-style classification score of every
    method's embeddings (embedding_classification.py; ``mteb`` in EvalConfig).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence


from weightspace.adapt.finetune import FinetuneConfig
from weightspace.card import make_card
from weightspace.config import option, to_dict, validate
from weightspace.errors import WeightspaceError
from weightspace.evaluate.baseline_registry import applicable_baselines
from weightspace.evaluate import embedding_classification as mteb_scores
from weightspace.evaluate.context import load_context
from weightspace.evaluate.controls import control_margins, control_methods, none_partners
from weightspace.evaluate.distributed import check_backend, open_finetune_pool, pool_slots
from weightspace.evaluate.contenders import above_reference, above_reference_sentence, best_fewshot
from weightspace.evaluate.finetuning import CVGrid, finetune_methods, step_seconds, tuned_finetune_method
from weightspace.evaluate.generated import (
    MODES_HELP,
    generator_methods,
    generator_name,
    load_generators,
    mode_key,
    parse_mode,
)
from weightspace.evaluate.methods import rank_by_support
from weightspace.evaluate.reference import pretrained_start, reference_method
from weightspace.evaluate.starts import COST_STARTS, scratch_method, shared_start_method
from weightspace.evaluate.results import NOTES, SCHEMA, finite, generator_cost, method_entry, verdict
from weightspace.evaluate.scoring import score_methods
from weightspace.evaluate.stages import Stages
from weightspace.evaluate.weight_map import weight_map
from weightspace.io import atomic_write_json


@dataclass
class EvalConfig:
    tasks: int = option(0, "Evaluate the first N held-out tasks of the zoo's family; 0 evaluates all.", min=0)
    finetune_steps: tuple[int, ...] = option((0, 10, 50, 200), "Fine-tuning steps reported as methods (besides 'converged').")
    budget: int = option(0, "Steps of 'until converged' fine-tuning and of the steps-to-match search; 0 = the zoo's training steps.", min=0)
    eval_every: int = option(10, "Test accuracy is recorded every this many fine-tuning steps (resolution of steps-to-match).", min=1)
    finetune_lr: float = option(0.0, "Fine-tuning learning rate; 0 uses the zoo's own training learning rate.")
    noise_sigmas: tuple[float, ...] = option((0.01, 0.05, 0.1, 0.2), "Noise levels of the noisy-copy baseline, x each tensor's zoo std.")
    average_k: int = option(16, "Members averaged by the random-average baseline.", min=1)
    refine: int = option(3, "Nearest candidates re-matched pairwise when measuring aligned distances.")
    align_iters: int = option(3, "Barycentre re-alignment passes for independent-init zoos.")
    generator_modes: tuple[str, ...] = option(("sample", "central", "best-of-8"), f"How each generator is asked: {MODES_HELP}.")
    multitask_tasks: int = option(128, "Zoo tasks the multi-task baseline trains on (evenly spaced; 0 = all, -1 = no multi-task baseline).")
    cv_folds: int = option(4, "Folds of the cross-validated support-set fine-tuning (lr and steps chosen per task); 0 = none.", min=0)
    cv_lr_scales: tuple[float, ...] = option((0.1, 0.3, 1.0), "Learning rates cross-validation chooses from, x the fine-tuning lr.")
    cv_steps: tuple[int, ...] = option((0, 5, 10, 20, 50, 100, 200, 500), "Step counts cross-validation chooses from "
                                       "(those within cv_max_steps, and cv_max_steps itself).")
    cv_max_steps: int = option(0, "Most steps cross-validation may choose; 0 = the fine-tuning budget. Its cost is "
                                  "folds x learning rates x this many steps per task.", min=0)
    starts: tuple[str, ...] = option(("shared", "scratch"), "Fine-tuning starts measured besides zoo-best and the "
                                     "generators' outputs (for overall.cost): shared (the pretrained start), scratch.")
    finetune_from: str = option("central", "The generator mode whose output is fine-tuned (one of generator_modes), or none.")
    seed: int = option(0, "Seed of every random draw (samples, noise, member subsets, data order).")
    backend: str = option("local", "Where fine-tuning runs: local (this machine) or ray (a Ray cluster).")
    workers: int = option(0, "Processes fine-tuning chunks of tasks, 0 = one batched run here; ray: 0 = one per cluster CPU.")
    address: str | None = option(None, "Ray cluster (host:6379, ray://host:10001, auto); None starts a local Ray instance.")
    mteb: str = option("auto", "MTEB-style classification score of every method's embeddings (logistic regression, "
                               "k-fold over each task's data): auto = for architectures that expose features (LoRA "
                               "sets), on, off.", choices=mteb_scores.MODES)
    mteb_folds: int = option(5, "Folds of the MTEB-style score (stratified, seeded).", min=2)


def finetune_config(ctx, cfg: EvalConfig) -> FinetuneConfig:
    # The raw recorded recipe too: a LoRA zoo's LoRATrainConfig carries head_lr, TrainConfig does not.
    ft = FinetuneConfig.from_train_config({**to_dict(ctx.train_cfg), **(ctx.records[0].optimizer or {})})
    if cfg.finetune_lr > 0:
        ft.lr = cfg.finetune_lr
    return ft


def check_config(cfg: EvalConfig) -> None:
    check_backend(cfg.backend, cfg.workers, cfg.address)  # first: its sentences say where fine-tuning runs
    validate(cfg, where="eval config")  # types, bounds and choices of the single-valued fields
    if any(k < 0 for k in cfg.finetune_steps) or any(s < 0 for s in cfg.noise_sigmas):
        raise WeightspaceError(f"--finetune-steps must be non-negative step counts and noise sigmas >= 0, got "
                               f"{list(cfg.finetune_steps)} and {list(cfg.noise_sigmas)}.")
    for mode in cfg.generator_modes:
        parse_mode(mode)
    if cfg.cv_folds == 1 or any(s <= 0 for s in cfg.cv_lr_scales) or any(k < 0 for k in cfg.cv_steps):
        raise WeightspaceError("cv_folds must be 0 (off) or >= 2, cv_lr_scales positive and cv_steps non-negative.")
    if cfg.finetune_from != "none" and cfg.finetune_from not in cfg.generator_modes:
        raise WeightspaceError(f"finetune_from={cfg.finetune_from!r} is not among generator_modes {list(cfg.generator_modes)}.")
    unknown = sorted(set(cfg.starts) - {"shared", "scratch"})
    if unknown:
        raise WeightspaceError(f"unknown fine-tuning start {', '.join(unknown)}; choose from shared, scratch.")


def evaluate(generator_dirs: Sequence[str | Path], zoo_dir: str | Path, cfg: EvalConfig | None = None,
             progress: bool = False, console=None) -> dict[str, Any]:
    """Run every method on the zoo's held-out tasks; return the results.json dictionary."""
    cfg = cfg or EvalConfig()
    check_config(cfg)
    began = time.perf_counter()
    gens = load_generators(list(generator_dirs))
    with Stages(progress, console) as stages, open_finetune_pool(cfg.backend, cfg.workers, cfg.address) as pool:
        # One pool for every stage that spreads work over workers: fine-tuning, the support-set
        # baselines, scoring; its processes keep the tasks they built between stages.
        with stages.stage("aligning zoo") as cb:
            ctx = load_context(zoo_dir, cfg.tasks, cfg.align_iters, cfg.refine, cfg.seed, progress=cb)
        ctx.pool = pool
        budget = cfg.budget or ctx.train_cfg.steps
        score_embeddings = mteb_scores.enabled(ctx.arch, cfg.mteb)
        if any(k > budget for k in cfg.finetune_steps):
            raise WeightspaceError(f"fine-tuning steps {max(cfg.finetune_steps)} exceed the budget of {budget} steps; raise --budget.")
        chosen = applicable_baselines(ctx, cfg)
        with stages.stage("retrieval and baselines", 2 + len(chosen)) as cb:
            ranked = rank_by_support(ctx)
            cb(1)
            pretrained = pretrained_start(ctx, cfg.seed) if ctx.arch.features_dim is None else None
            reference = reference_method(ctx, cfg.seed, start=pretrained)
            cb(2)
            baselines = []
            for i, entry in enumerate(chosen):
                baselines += entry.obj(ctx, ranked, cfg)
                cb(3 + i)
        retrieval = next(m for m in baselines if m.key == "retrieval")  # also the zoo-best fine-tuning start
        generated, ablations, starts, taken, names = [], [], [(retrieval, "zoo-best")], set(), []
        if pretrained is not None:  # standard fine-tuning and training from scratch, for the cost figures
            starts += [(m, name) for m, name in ((shared_start_method(ctx, pretrained), "shared"),
                                                 (scratch_method(ctx, cfg.seed), "scratch")) if name in cfg.starts]
        with stages.stage("sampling generators", len(gens)) as cb:
            for i, (gen, path) in enumerate(zip(gens, generator_dirs)):
                name = generator_name(gen, Path(path), taken)
                taken.add(name)
                names.append(name)
                modes = generator_methods(ctx, gen, path, name, cfg.generator_modes, cfg.seed)
                generated += modes
                ablations += control_methods(ctx, gen, name, cfg.generator_modes, cfg.seed)
                starts += [(m, f"{name}:{cfg.finetune_from}") for m in modes
                           if cfg.finetune_from != "none" and m.key == mode_key(name, cfg.finetune_from)]
                cb(i + 1)
        ft_cfg = finetune_config(ctx, cfg)
        per_step = step_seconds(ctx, ft_cfg, cfg.seed)
        finetuned, curves = [], {}
        slots = pool_slots(pool, cfg.workers)
        for start, name in starts:
            with stages.stage(f"fine-tuning from {name}", 2 * budget) as cb:
                methods, curves[name] = finetune_methods(ctx, start, name, ft_cfg, list(cfg.finetune_steps), budget,
                                                         cfg.eval_every, per_step, cfg.seed, progress=cb,
                                                         pool=pool, slots=slots)
                finetuned += methods
            if cfg.cv_folds and name != "scratch":  # nobody tunes a fresh init on 100 examples
                with stages.stage(f"cross-validated fine-tuning from {name}") as cb:
                    grid = CVGrid(cfg.cv_folds, tuple(cfg.cv_lr_scales), tuple(cfg.cv_steps),
                                  min(cfg.cv_max_steps or budget, budget))
                    finetuned.append(tuned_finetune_method(ctx, start, name, ft_cfg, grid, per_step, cfg.seed,
                                                           pool=pool, slots=slots))
                    cb(1)
        methods = [reference, *generated, *ablations, *baselines, *finetuned]
        embedded, test_features = None, None
        if score_embeddings:  # first: its forwards of the test sets serve scoring too
            with stages.stage("MTEB-style embedding classification", len(ctx.tasks)) as cb:
                embedded, test_features = mteb_scores.embedding_scores_and_features(ctx, methods, cfg.mteb_folds,
                                                                                  cfg.seed, progress=cb, pool=pool)
        with stages.stage("scoring on test sets", 2 * len(ctx.tasks)) as cb:
            scores, zoo_acc = score_methods(ctx, methods, progress=cb, pool=pool, features=test_features)
        with stages.stage("weight-space map") as cb:
            mapped = ["reference", "retrieval", *(g.key for g in generated if g.key.endswith(":central"))]
            wmap = weight_map(ctx, methods, mapped, seed=cfg.seed)
            cb(1)
    median = ctx.zoo_nn_dist_median
    entries = {m.key: method_entry(ctx, m, scores[m.key], scores["reference"], median) for m in methods}
    if embedded is not None:
        mteb_scores.attach(entries, embedded)
    controls = control_margins(entries, none_partners(gens, names))
    start_of = {name: m for m, name in starts}
    costs = {g.key: {s: generator_cost(g, scores[g.key], curves[s], start_of[s], per_step, ctx.n_params)
                     for s in COST_STARTS if s in curves} for g in generated}
    overall = {
        "zoo_members": len(ctx.records),
        "zoo_aligned": ctx.aligned,
        "alignment_seconds": ctx.align_seconds,
        "zoo_nn_dist_median": median,
        "zoo_acc_on_heldout": {"best_member_mean": float(zoo_acc.max(1).values.mean()),
                               "member_mean": float(zoo_acc.mean())},
        "reference_source": reference.info["source"],
        "n_params": ctx.n_params,
        "finetune": {**to_dict(ft_cfg), "budget_steps": budget, "seconds_per_step": per_step,
                     "seconds_basis": "one task alone, measured on the first held-out task",
                     "backend": cfg.backend, "workers": slots},
        "finetune_curves": {name: {d: c.to_dict() for d, c in per.items()} for name, per in curves.items()},
        "cost": costs,
        "verdict": {g.key: verdict(entries, g.key, controls.get(g.key)) for g in generated},
        "controls": controls,
        "mteb": mteb_scores.overall(entries, cfg.mteb_folds) if embedded is not None else None,
        "best_fewshot": best_fewshot(entries),
        "above_reference": above_reference(entries),
        "above_reference_sentence": above_reference_sentence(entries),
        "weight_map": wmap,
        "stage_seconds": stages.seconds,
        "seconds_total": time.perf_counter() - began,
    }
    config = {**to_dict(cfg), "generators": [str(p) for p in generator_dirs], "zoo": str(zoo_dir)}
    return finite({
        "schema": SCHEMA,
        "zoo": str(zoo_dir),
        "generators": [{"key": g.key, **g.info} for g in generated],
        "tasks": [t.task_id for t in ctx.tasks],
        "config": config,
        "card": make_card("eval", config, seed=cfg.seed, zoo=str(zoo_dir)),
        "notes": NOTES,
        "methods": entries,
        "ranking": sorted(entries, key=lambda k: -entries[k]["acc_mean"]),
        "overall": overall,
    })


def write_results(out_dir: str | Path, results: dict[str, Any]) -> Path:
    path = Path(out_dir) / "results.json"
    atomic_write_json(path, results)
    return path
