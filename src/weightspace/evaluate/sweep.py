"""The zoo-size sweep: what generation adds over retrieval and support-set fine-tuning as the zoo grows.

For each size N the source zoo is cut down to N evenly spaced zoo tasks (every seed of them)
plus all held-out reference members, a generator is fitted on that smaller zoo, and the usual
harness judges it on the same held-out tasks. Every size is kept under OUT/size-N/ (zoo,
generator, results.json) and skipped when already finished, so an interrupted sweep resumes.

    OUT/sweep.json   zoo_sizes, acc per method (the report's sweep curves), raw numbers per size
    OUT/report.html  the largest size's full report with the sweep figure and table
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from weightspace.card import make_card
from weightspace.errors import WeightspaceError
from weightspace.generate.training import fit_and_save
from weightspace.io import atomic_path, atomic_write_json
from weightspace.zoo.store import Zoo

# The curves of the sweep figure: label -> how its number is found in results["methods"].
GENERATED = "generated"
RETRIEVAL = "retrieval"
FINETUNE = "fine-tune zoo start on support set"
FINETUNE_STEPS = (0, 10, 50, 200)  # reported beside the converged run, as in the demo
# The zoo's full training budget on the support set: a fixed, test-blind choice of step count
# (picking the best step by test accuracy would let the baseline peek at the test set).
FINETUNE_KEY = "finetune:zoo-best:support@converged"


def zoo_task_order(zoo: Zoo) -> list[str]:
    """The source's zoo tasks in the family's own order (descriptor order for a sweep of angles)."""
    from weightspace.tasks import family_from_dict

    stored = dict.fromkeys(r.task_id for r in zoo.records(final_only=True, split="zoo"))  # ordered, unique
    try:
        order = [t for t in family_from_dict(zoo.family).zoo_task_ids() if t in stored]
    except WeightspaceError:  # an imported zoo's family may not be rebuildable: keep stored order
        order = []
    return list(dict.fromkeys([*order, *stored]))  # then any stored task the family did not list


def evenly_spaced(items: Sequence[str], n: int) -> list[str]:
    """``n`` items spread over the whole list (the first always included); distinct for n <= len."""
    return [items[i * len(items) // n] for i in range(n)]


def check_sizes(sizes: Sequence[int], n_tasks: int, where: str) -> list[int]:
    sizes = sorted({int(s) for s in sizes})
    if not sizes:
        raise WeightspaceError("--sizes needs at least one zoo size, e.g. 16,32,64.")
    if sizes[0] < 2:
        raise WeightspaceError(f"zoo size {sizes[0]} is too small; every size needs at least 2 zoo tasks.")
    if sizes[-1] > n_tasks:
        raise WeightspaceError(f"zoo size {sizes[-1]} exceeds the {n_tasks} zoo tasks of {where}; choose sizes up to {n_tasks}.")
    return sizes


def subset_zoo(src_zoo_dir: str | Path, dst_dir: str | Path, n_tasks: int) -> Zoo:
    """A new zoo at ``dst_dir`` with ``n_tasks`` evenly spaced zoo tasks of the source and all its
    held-out references; an already finished subset there is opened instead.

    It is assembled in a sibling ``.partial`` directory and renamed into place, so a crash never
    leaves a half-copied zoo at ``dst_dir``.
    """
    dst = Path(dst_dir)
    if (dst / "zoo.json").is_file():
        return Zoo.open_verified(dst)
    with Zoo.open_verified(src_zoo_dir) as src:
        order = zoo_task_order(src)
        check_sizes([n_tasks], len(order), str(src_zoo_dir))
        keep = set(evenly_spaced(order, n_tasks))
        members = [r for r in src.records(final_only=True, split="zoo") if r.task_id in keep]
        references = src.records(final_only=True, split="heldout")
        partial = dst.with_name(dst.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)  # our own leftover from an interrupted subset
        card = make_card("zoo-subset", {"source": str(src_zoo_dir), "n_tasks": n_tasks}, seed=src.card.get("seed"),
                         source_card=src.card, tasks=sorted(keep, key=order.index),
                         zoo_members=len(members), heldout_members=len(references))
        with Zoo.create(partial, src.arch, src.family, card) as out:
            for records in (members, references):
                if records:
                    tensors = src.load([r.member_id for r in records], split=None)
                    out.add(records, tensors)  # the store assigns fresh member ids and checksums
        base = src.path / "base.safetensors"  # a shared-init zoo's common start: references train from it
        if base.is_file():
            with atomic_path(partial / "base.safetensors") as tmp:
                shutil.copyfile(base, tmp)
    if dst.exists():
        shutil.rmtree(dst)  # a directory without zoo.json: an unfinished earlier attempt
    partial.rename(dst)
    return Zoo.open_verified(dst)


def headline(results: Mapping[str, Any]) -> dict[str, float]:
    """The sweep's numbers from one results.json: the generator's central output, retrieval,
    support-set fine-tuning of the best zoo start, and the trained reference."""
    methods = results["methods"]
    central = [g["key"] for g in results["generators"] if g["key"].endswith(":central")]
    if len(central) != 1:
        raise WeightspaceError(f"the sweep's results name {len(central)} central generator outputs; expected exactly one.")
    wanted = {GENERATED: central[0], RETRIEVAL: "retrieval", FINETUNE: FINETUNE_KEY, "reference": "reference"}
    missing = [k for k in wanted.values() if k not in methods]
    if missing:
        raise WeightspaceError(f"the sweep's results lack method {missing[0]!r}; was the evaluation cut short?")
    return {label: float(methods[key]["acc_mean"]) for label, key in wanted.items()}


def _size_record(results: Mapping[str, Any], zoo_members: int, fit_seconds: float | None) -> dict[str, Any]:
    methods = results["methods"]
    support = {k: methods[k]["acc_mean"] for k in methods if k.startswith("finetune:zoo-best:support@")}
    return {
        "acc": headline(results),
        "zoo_members": zoo_members,
        "finetune_zoo_best_support": support,  # every step count, for readers who want the curve
        "oracle_descriptor": methods.get("oracle:descriptor", {}).get("acc_mean"),
        "generator_fit_seconds": fit_seconds,
        "eval_seconds": results["overall"].get("seconds_total"),
    }


def run_sweep(zoo_dir: str | Path, sizes: Sequence[int], out_dir: str | Path, generator: str = "hypernet",
              condition: str = "support", generator_options: Mapping[str, Any] | None = None, eval_tasks: int = 0,
              seed: int = 0, progress: bool = True, console=None, write_report: Callable | None = None) -> dict[str, Any]:
    """Run (or resume) the sweep; returns what OUT/sweep.json holds. ``write_report(out, results,
    sweep=, title=)`` (report.html's, which the CLI passes: report/ sits above evaluate/) writes
    OUT/report.html from the largest size's results."""
    from weightspace.evaluate.context import recorded_train_config
    from weightspace.evaluate.harness import EvalConfig, evaluate, write_results

    torch.set_num_threads(1)  # small nets, long run: one thread (see demo.py)
    out = Path(out_dir)
    with Zoo.open_verified(zoo_dir) as src:
        n_tasks = len(zoo_task_order(src))
        n_references = len(src.records(final_only=True, split="heldout"))
        budget = recorded_train_config(src.records(final_only=True, split="zoo")).steps
    sizes = check_sizes(sizes, n_tasks, str(zoo_dir))
    if n_references == 0:
        raise WeightspaceError(f"{zoo_dir} holds no held-out reference members; build it with `weightspace zoo build --heldout-models` so every size is judged against the same references.")
    options = dict(generator_options or {})
    # Step counts from the zoo's own training budget on are dropped: the budget itself is "converged".
    cfg = EvalConfig(tasks=eval_tasks, finetune_steps=tuple(k for k in FINETUNE_STEPS if k < budget), generator_modes=("central",),
                     finetune_from="central", seed=seed)
    per_size, results = {}, {}
    for n in sizes:
        run = out / f"size-{n}"
        if console is not None:
            console.rule(f"[bold]zoo of {n} tasks[/bold]")
        with subset_zoo(zoo_dir, run / "zoo", n) as sub:
            members = len(sub)
        gen_dir, fit_seconds = run / "generator", None
        if not (gen_dir / "config.json").is_file():
            fit_seconds = fit_and_save(run / "zoo", gen_dir, generator, condition, {"seed": seed, **options})
        results_path = run / "results.json"
        if results_path.is_file():
            results = json.loads(results_path.read_text())
        else:
            results = evaluate([gen_dir], run / "zoo", cfg, progress=progress, console=console)
            write_results(run, results)
        per_size[str(n)] = _size_record(results, members, fit_seconds)
    labels = (GENERATED, RETRIEVAL, FINETUNE)
    sweep = {
        "zoo_sizes": sizes,
        "acc": {label: [per_size[str(n)]["acc"][label] for n in sizes] for label in labels},
        "reference_acc": sum(per_size[str(n)]["acc"]["reference"] for n in sizes) / len(sizes),
        "per_size": per_size,
        "finetune_method": FINETUNE_KEY,
        "card": make_card("sweep", {"zoo": str(zoo_dir), "sizes": sizes, "generator": generator, "condition": condition,
                                    "generator_options": options, "eval_tasks": eval_tasks}, seed=seed),
    }
    atomic_write_json(out / "sweep.json", sweep)
    if write_report is not None:
        write_report(out, results, sweep=sweep, title=f"weightspace zoo-size sweep: {generator}")
    return sweep
