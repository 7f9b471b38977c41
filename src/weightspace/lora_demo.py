"""The LoRA pipeline end to end on the frozen all-MiniLM-L6-v2 (`weightspace demo --family text-lora`
on chatterbot tasks, `weightspace demo --family wordnet` on WordNet definitions by supersense):

    RUN/zoo/           one LoRA per chatterbot zoo task (+ full-data references on held-out tasks)
    RUN/generator/     a generator of LoRA sets, conditioned on each task's support set and
                       description (text-lora) or on its description alone (wordnet)
    RUN/generator-none/ wordnet: the same generator told nothing (the `none` control)
    RUN/results.json   the harness: generated adapters vs full-data LoRA, support-set LoRA, the
                       frozen-embedding probe, retrieval, task arithmetic / TIES merging and the
                       memorization baselines, with novelty and cost
    RUN/report.html    the same report as the main demo
    RUN/adapter/       the adapter generated for the first held-out task, as a PEFT folder
                       (text-lora: head refitted on its support set; wordnet: from the description alone)

Each stage is skipped when its output is complete, so an interrupted run resumes (the zoo member
by member: it is built by the one zoo builder, zoo.build, as `zoo build --arch lora-minilm` would).
The zoo is a spread of the family's zoo tasks (every kind), the held-out tasks the family's first
ones (interleaved by kind): no zoo member saw a held-out topic or language. Stages run through
demo.py's ``Steps`` runner, as the main demo's do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from weightspace.card import make_card
from weightspace.config import from_mapping, option, to_dict
from weightspace.demo import Steps, evaluated
from weightspace.generate.training import fit_and_save
from weightspace.io import atomic_write_json
from weightspace.zoo.workers import run_chunks


FAMILIES = ("chatterbot", "wordnet")


@dataclass
class LoRADemoConfig:
    out: str = option("runs/demo-text-lora", "Run directory; a rerun resumes the stages that are not finished.")
    family: str = option("chatterbot", "chatterbot (topic and language pairs) or wordnet (definitions by supersense, "
                                       "the Debian package wordnet-base)", choices=FAMILIES)
    family_options: dict = option({}, "Further family constructor arguments (key: value), e.g. wordnet's glosses_per_supersense.")
    zoo_tasks: int = option(48, "Zoo tasks, spread over the family's task kinds.")
    heldout: int = option(16, "Held-out tasks (whole held-out topics and languages), each with a full-data reference LoRA.")
    rank: int = option(4, "LoRA rank.")
    layers: tuple[int, ...] = option((4, 5), "Adapted MiniLM layers (the top 2: measured as accurate as all 6, 3x cheaper).")
    modules: tuple[str, ...] = option(("query", "value"), "Adapted Linears of each layer.")
    steps: int = option(100, "Training steps per LoRA (accuracy saturates near 100 on these tasks).")
    generator: str = option("hypernet", "Generator of LoRA sets.")
    condition: str = option("text-both", "What the generator sees of a new task: text-both = its labelled sentences and its description (measured best).")
    generator_options: dict = option({"objective": "regression", "output": "pca", "steps": 2000},
                                     "Options for the generator (key: value).")
    generator_modes: tuple[str, ...] = option(("central", "central+head"),
                                              "How the generator is asked (see `weightspace eval`); +head refits the head on the support set, "
                                              "+prior refits it shrunk towards the generated head.")
    finetune_steps: tuple[int, ...] = option((0, 10, 50), "Fine-tuning steps reported beside generation.")
    eval_every: int = option(25, "Fine-tuning test accuracy every this many steps (each point runs every held-out test set).")
    eval_options: dict = option({}, "Further harness settings (fields of `weightspace eval`'s config, key: value), e.g. "
                                     "cv_folds: 2 for a cheaper cross-validated fine-tuning baseline.")
    none_twin: bool = option(False, "Also train the generator told nothing (condition none), so the harness reports "
                                    "the condition's margin over it.")
    export_head: str = option("refit", "The exported adapter's head: refit (on the support set) or generated.",
                              choices=("refit", "generated"))
    workers: int = option(2, "Worker processes for the LoRA zoo, the generator fits and the harness's fine-tuning "
                             "(one torch thread each).")
    seed: int = option(0, "Seed of the family split, inits, data order and sampling.")

    @classmethod
    def wordnet(cls) -> "LoRADemoConfig":
        """The WordNet demo: adapters written from the task's description alone, beside the same
        generator told nothing. Cut down for time from the benchmark's settings: 250 steps on 128
        tasks of the family's space, 16 zoo tasks (the generator trains on the family's space; the
        zoo serves the baselines) and a cheaper harness (fine-tuning curves to 50 steps,
        cross-validation over 2 folds and 20 steps). benchmarks/RESULTS.md has the stage costs this
        was sized from and the 600-step, 256-task figures on 32 held-out tasks."""
        return cls(out="runs/demo-wordnet", family="wordnet", zoo_tasks=16, heldout=16, condition="text-description",
                   generator_options={"objective": "task", "output": "full", "warmup_steps": 0, "head": "description",
                                      "task_pool": "family", "pool_size": 128, "steps": 250, "batch_tasks": 8,
                                      "batch_examples": 16},
                   generator_modes=("central", "central+prior"), none_twin=True, export_head="generated",
                   eval_options={"budget": 50, "cv_folds": 2, "cv_lr_scales": (1.0,), "cv_max_steps": 20})


def run_lora_demo(cfg: LoRADemoConfig, console: Console | None = None) -> dict[str, Any]:
    """Run (or resume) the LoRA pipeline; returns paths and headline numbers."""
    from weightspace.evaluate.harness import EvalConfig, check_config
    from weightspace.evaluate.sweep import evenly_spaced
    from weightspace.nets.lora_minilm import LoRAMiniLM
    from weightspace.nets.lora_minilm.train import LoRATrainConfig
    from weightspace.report.html import write_report
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo

    console = console or Console(stderr=True)
    # Fine-tuning runs from the best zoo start only (the costly stage: every step runs two
    # transformer layers for every task); the full-data and support-set LoRAs trained from
    # PEFT's init are methods of their own (reference, support-lora). Built first: a bad
    # eval_options key fails before any work.
    ecfg = from_mapping(EvalConfig, {"tasks": cfg.heldout, "seed": cfg.seed, "generator_modes": cfg.generator_modes,
                                     "finetune_steps": tuple(k for k in cfg.finetune_steps if k <= cfg.steps),
                                     "finetune_from": "none", "eval_every": cfg.eval_every, "workers": cfg.workers,
                                     **cfg.eval_options},
                        where="eval_options")
    check_config(ecfg)
    torch.set_num_threads(1)
    run = Path(cfg.out)
    run.mkdir(parents=True, exist_ok=True)
    steps = Steps(console, 5)
    # wordnet: the zoo is the family's own seeded draw of zoo_tasks subsets (its held-out split does not depend on it)
    sizes = {"n_tasks": cfg.zoo_tasks} if cfg.family == "wordnet" else {}
    family = make_family(cfg.family, inputs="hidden", hidden_layer=min(cfg.layers), seed=cfg.seed,
                         **{**sizes, **cfg.family_options})
    arch = LoRAMiniLM(n_classes=family.n_classes, layers=cfg.layers, modules=cfg.modules, rank=cfg.rank,
                      max_length=family.max_length, inputs="hidden")
    zoo_ids = family.zoo_task_ids()  # grouped by kind: evenly spaced ids sample every kind
    task_ids = evenly_spaced(zoo_ids, min(cfg.zoo_tasks, len(zoo_ids))) + family.heldout_task_ids()[:cfg.heldout]
    zoo_dir = run / "zoo"
    steps.start(f"LoRA zoo: {cfg.zoo_tasks} {cfg.family} tasks + {cfg.heldout} held-out references "
                f"(rank {cfg.rank} on layers {', '.join(map(str, arch.layers))}: {arch.spec().numel:,} numbers each)")
    steps.timed("zoo", build_zoo, zoo_dir, family, arch, LoRATrainConfig(steps=cfg.steps), include_heldout=True,
                task_ids=task_ids, chunk_size=4, workers=cfg.workers, seed=cfg.seed).close()

    gen_dir = run / "generator"
    gen_dirs = [gen_dir] + ([run / "generator-none"] if cfg.none_twin else [])
    steps.start(f"train: {cfg.generator} conditioned on {cfg.condition}" + (" and on none" if cfg.none_twin else ""))
    # The generator and its none twin are independent fits: one worker process each, side by side.
    jobs = [(zoo_dir, directory, cfg.generator, condition, cfg.generator_options)
            for directory, condition in zip(gen_dirs, (cfg.condition, "none"))]
    todo = []
    for job in jobs:
        finished = job[1] / "config.json"  # written last by a finished fit
        if finished.exists():
            steps.skip(str(finished))
        else:
            todo.append(job)
    if todo:
        steps.timed("train", lambda: [seconds for _, seconds in run_chunks(_fit_job, todo, cfg.workers)])

    steps.start("eval: generated adapters vs LoRA fine-tuning, probe, retrieval, merging and memorization baselines")
    results = evaluated(ecfg, run, gen_dirs, zoo_dir, steps, "eval", console)

    steps.start("export: the adapter generated for the first held-out task, as a PEFT folder")
    adapter = steps.timed("export", _export_first, gen_dir, zoo_dir, family, run / "adapter", cfg.export_head)

    steps.start("report")
    report = write_report(run, results, title=f"weightspace demo: LoRA adapters for all-MiniLM-L6-v2 ({cfg.family})")
    summary = {"report": str(report), "results": str(run / "results.json"), "adapter": adapter,
               "seconds": time.perf_counter() - steps.began, "stage_seconds": steps.timings,
               "verdict": results.get("overall", {}).get("verdict", {})}
    atomic_write_json(run / "card.json", make_card("demo-text-lora", to_dict(cfg), seed=cfg.seed, summary=summary))
    return summary


def _fit_job(job: tuple) -> float:
    """fit_and_save(*job) in a worker process (module level: the job is pickled to it)."""
    return fit_and_save(*job)


def _export_first(gen_dir: Path, zoo_dir: Path, family, out: Path, head: str = "refit") -> dict[str, Any]:
    """Generate the first held-out task's adapter from its condition, with its head refitted on the
    support set (``refit``, the `central+head` mode: the head is label-specific) or as generated
    (``generated``, the `central` mode: from the description alone), and write it for PEFT."""
    from weightspace.export.peft import export_peft
    from weightspace.generate.evaluation import central_with_head
    from weightspace.generate.registry import load_generator
    from weightspace.zoo.store import Zoo

    gen = load_generator(gen_dir)
    with Zoo.open_verified(zoo_dir) as zoo:
        task = family.task(family.heldout_task_ids()[0])
        t = time.perf_counter()
        if head == "refit":
            params = central_with_head(gen, task)
        else:
            params = {k: v[0] for k, v in gen.sample(gen.encode_condition(task), deterministic=True).items()}
        seconds = time.perf_counter() - t
        said = "refitted on the task's support set" if head == "refit" else "generated with the adapter"
        card = make_card("peft-adapter", {"source": {"generator": str(gen_dir), "task": task.task_id, "head": said}})
        path = export_peft(params, out, zoo.arch, card=card, overwrite=True)
    return {"path": str(path), "task": task.task_id, "description": task.description, "generation_seconds": seconds}
