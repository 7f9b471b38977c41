"""Turning scores into results.json: per-method summaries, the cost of matching each generator
by fine-tuning, and a plain verdict on whether each generator beats retrieval and every
memorization baseline.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch

from weightspace.evaluate.context import ZooContext
from weightspace.evaluate.contenders import fewshot_baselines
from weightspace.evaluate.cost import match_cost, steps_to_match
from weightspace.evaluate.finetuning import Curve
from weightspace.evaluate.intervals import entry_difference, per_task_acc
from weightspace.evaluate.methods import Method
from weightspace.evaluate.scoring import Scores

SCHEMA = "weightspace.eval/1"


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(statistics.fmean(values)) if values else None


def method_entry(ctx: ZooContext, m: Method, s: Scores, ref: Scores, zoo_nn_median: float) -> dict[str, Any]:
    ratio = s.acc / ref.acc.clamp_min(1e-12)
    dist_mean = float(s.nn_dist.mean())
    return {
        "key": m.key, "kind": m.kind, "label": m.label, "description": m.description,
        "acc_mean": float(s.acc.mean()),
        "acc_std": float(s.acc.std()) if s.acc.numel() > 1 else 0.0,
        "balanced_acc_mean": float(s.bal_acc.mean()),
        "balanced_acc_ratio_to_trained": float((s.bal_acc / ref.bal_acc.clamp_min(1e-12)).mean()),
        "acc_ratio_to_trained": float(ratio.mean()),
        "novelty_iou_max_mean": float(s.iou_max.mean()),
        "nn_aligned_dist_mean": dist_mean,
        "nn_dist_over_zoo_median": dist_mean / zoo_nn_median if zoo_nn_median > 0 else None,
        "seconds_per_task": _mean(m.seconds),
        "setup_seconds": m.setup_seconds,
        "flops_per_task": _mean(m.flops) if all(f is not None for f in m.flops) else None,
        "info": m.info,
        "per_task": [
            {"task_id": task.task_id, "acc": float(s.acc[t]), "balanced_acc": float(s.bal_acc[t]),
             "acc_ratio_to_trained": float(ratio[t]),
             "novelty_iou_max": float(s.iou_max[t]), "nn_aligned_dist": float(s.nn_dist[t]),
             "nearest_member": ctx.records[int(s.nn_member[t])].key,
             "seconds": m.seconds[t], "flops": m.flops[t]}
            for t, task in enumerate(ctx.tasks)
        ],
    }


def generator_cost(gen: Method, gen_scores: Scores, curves: dict[str, Curve], start: Method,
                   per_step: dict[str, float], n_params: int) -> dict[str, dict]:
    """Fine-tuning from ``start`` until it reaches the generator's accuracy, per data source."""
    out = {}
    for data, curve in curves.items():
        steps, reached = steps_to_match(torch.tensor(curve.grid), torch.tensor(curve.acc), gen_scores.acc)
        cost = match_cost(steps, reached, budget_steps=curve.grid[-1], seconds_per_step=per_step[data],
                          start_seconds=_mean(start.seconds) or 0.0,
                          generation_seconds=_mean(gen.seconds) or 0.0, n_params=n_params,
                          batch_examples=curve.examples_per_step)
        out[data] = cost.to_dict()
    return out


# Baselines a generator must beat: copies and combinations of zoo members. "merging" (task
# arithmetic, TIES) builds one model out of many members, which is memorization's next of kin.
BASELINE_KINDS = ("memorization", "merging")


def generator_name(key: str, e: dict) -> str:
    return (e.get("info") or {}).get("name") or (key.split(":")[1] if key.count(":") else key)


def generator_mode(key: str, e: dict) -> str:
    mode = (e.get("info") or {}).get("mode")
    if mode:
        return str(mode)
    parts = key.split(":", 2)
    return parts[2] if len(parts) > 2 else "sample"


def _same_number(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-5 * max(1.0, abs(a), abs(b))  # float32 batching noise, not another model


def identical_generator_modes(entries: dict[str, dict]) -> dict[str, list[str]]:
    """Modes of one generator that produced the same model: representative key -> its group
    (sample, central, then the other modes; the first speaks for the group). A deterministic generator's sample, central and
    best-of-K outputs are one model; they are told apart by identical per-task accuracies (and
    the same aligned distance to the zoo), so the report gives them one verdict, not three."""
    groups: dict[str, list[str]] = {}
    for key, e in entries.items():
        if e.get("kind") != "generator":
            continue
        acc = per_task_acc(e)
        for rep, members in groups.items():
            r = entries[rep]
            if (acc is not None and generator_name(rep, r) == generator_name(key, e) and per_task_acc(r) == acc
                    and _same_number(r.get("nn_aligned_dist_mean"), e.get("nn_aligned_dist_mean"))):
                members.append(key)
                break
        else:
            groups[key] = [key]

    def order(k: str) -> tuple:  # sample, central, then best-of-K and the rest: the order modes are listed in
        mode = generator_mode(k, entries[k])
        return ({"sample": 0, "central": 1}.get(mode, 2), mode)

    ordered = (sorted(keys, key=order) for keys in groups.values())
    return {keys[0]: keys for keys in ordered}


def _interval(d: dict, scale: float, digits: int) -> str:
    """'95% CI +0.008 to +0.020 over 32 tasks', with ': within noise' when it includes 0."""
    noise = "" if d["excludes_zero"] or d["n_tasks"] < 2 else ": within noise"
    return f"95% CI {d['lo'] * scale:+.{digits}f} to {d['hi'] * scale:+.{digits}f} over {_plural(d['n_tasks'], 'task')}{noise}"


def _ci(d: dict | None) -> str:
    """'; +0.014, 95% CI +0.008 to +0.020 over 32 tasks' (empty without an interval)."""
    return "" if d is None else f"; {d['mean_diff']:+.3f}, {_interval(d, 1.0, 3)}"


def _points(margin: float, d: dict | None) -> str:
    """'-1.5 points, 95% CI -2.6 to -0.4 over 32 tasks' (the interval only with per-task data)."""
    return f"{margin * 100:+.1f} points" + ("" if d is None else f", {_interval(d, 100, 1)}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def verdict(entries: dict[str, dict], gen_key: str, controls: dict[str, dict] | None = None) -> dict[str, Any]:
    """Does the generator beat retrieval and every memorization (and merging) baseline on mean
    test accuracy? And the best few-shot training on the same support set (contenders.py:
    fine-tuning the best zoo start at every budget, cross-validated, and the ``fewshot`` kinds)?

    Differences come with a paired bootstrap interval over tasks where per-task accuracies are
    present. Modes of one generator that gave the same model (``identical_generator_modes``)
    share one sentence, naming them all ("sample = central = best-of-8"); every mode but the
    first carries ``duplicate_of`` so a report can print one verdict per distinct model.
    ``controls``: the generator's margins over its condition controls (``overall.controls[gen_key]``,
    controls.py), named in the sentence."""
    gen = entries[gen_key]
    retrieval = entries["retrieval"]
    baselines = {k: e for k, e in entries.items() if e["kind"] in BASELINE_KINDS}
    beaten_by = sorted((k for k, e in baselines.items() if e["acc_mean"] >= gen["acc_mean"]),
                       key=lambda k: -baselines[k]["acc_mean"])
    beats_retrieval = gen["acc_mean"] > retrieval["acc_mean"]
    best_key = max(baselines, key=lambda k: baselines[k]["acc_mean"]) if baselines else None
    group = next((g for g in identical_generator_modes(entries).values() if gen_key in g), [gen_key])
    modes = [generator_mode(k, entries[k]) for k in group]
    name = gen_key.split(":", 1)[-1]  # e.g. "hypernet:central"
    if len(group) > 1:
        name = f"{generator_name(gen_key, gen)} ({' = '.join(modes)}: the same model)"
    vs_retrieval = entry_difference(gen, retrieval)
    vs_best = entry_difference(gen, baselines[best_key]) if best_key else None
    acc = f"{gen['acc_mean']:.3f}"
    retrieval_text = f"retrieval ({acc} vs {retrieval['acc_mean']:.3f}{_ci(vs_retrieval)})"
    parts = [("beats " if beats_retrieval else "does NOT beat ") + retrieval_text]
    if not baselines:
        tail = "; the evaluation has no memorization baseline to compare with"
    elif not beaten_by:
        best = baselines[best_key]
        tail = (f" and every memorization baseline (best: {best['label']} at {best['acc_mean']:.3f}{_ci(vs_best)})"
                if len(baselines) > 1 else
                f" and the only memorization baseline ({best['label']} at {best['acc_mean']:.3f}{_ci(vs_best)})")
    else:
        top = baselines[beaten_by[0]]
        tail = (f" {'but' if beats_retrieval else 'and'} does NOT beat {len(beaten_by)} of "
                f"{_plural(len(baselines), 'memorization baseline')} "
                f"(best: {top['label']} at {top['acc_mean']:.3f}{_ci(vs_best)})")
    sentence = f"{name} {parts[0]}{tail}."
    # The novelty-aware reading: a baseline that copies the zoo more closely (higher error IoU)
    # buys its accuracy by memorising, so compare only against baselines at least as novel.
    gen_iou = gen["novelty_iou_max_mean"]
    as_novel = {k: e for k, e in baselines.items()
                if e["novelty_iou_max_mean"] is not None and gen_iou is not None
                and e["novelty_iou_max_mean"] <= gen_iou}
    beaten_at_novelty = sorted(k for k, e in as_novel.items() if e["acc_mean"] >= gen["acc_mean"])
    if not baselines:
        pass
    elif gen_iou is None:
        sentence += " Its novelty was not measured, so there is no novelty-matched comparison."
    elif not as_novel:
        sentence += (f" No memorization baseline is at least as novel as it (max error IoU ≤ {gen_iou:.2f}), "
                     "so there is no novelty-matched comparison.")
    elif beaten_at_novelty and len(as_novel) == 1:
        (only,) = as_novel.values()
        sentence += (f" The only memorization baseline at least as novel ({only['label']}, max error IoU "
                     f"{only['novelty_iou_max_mean']:.2f} ≤ {gen_iou:.2f}) is at least as accurate.")
    elif beaten_at_novelty:
        labels = [as_novel[k]["label"] for k in beaten_at_novelty]
        sentence += (f" Of the {len(as_novel)} memorization baselines at least as novel (max error IoU ≤ {gen_iou:.2f}), "
                     f"{', '.join(labels)} {'is' if len(labels) == 1 else 'are'} at least as accurate.")
    elif len(as_novel) == 1:
        (only,) = as_novel.values()
        sentence += (f" It is more accurate than the only memorization baseline at least as novel "
                     f"({only['label']}, max error IoU {only['novelty_iou_max_mean']:.2f} ≤ {gen_iou:.2f}).")
    else:
        sentence += (f" It is the most accurate of the {len(as_novel)} memorization baselines at least as novel "
                     f"(max error IoU ≤ {gen_iou:.2f}).")
    fewshot = fewshot_baselines(entries)
    margins = {k: gen["acc_mean"] - e["acc_mean"] for k, e in fewshot.items()}
    vs_fewshot = {k: entry_difference(gen, e) for k, e in fewshot.items()}
    best_fs = max(fewshot, key=lambda k: fewshot[k]["acc_mean"]) if fewshot else None
    if best_fs is not None:
        top = fewshot[best_fs]
        sentence += (f" {'It beats' if margins[best_fs] > 0 else 'It does NOT beat'} few-shot training on the same "
                     f"support set (best of {len(fewshot)}: {top['label']} at {top['acc_mean']:.3f}; "
                     f"{_points(margins[best_fs], vs_fewshot[best_fs])}).")
    if controls:
        sentence += " " + controls_sentence(controls)
    reference = entries.get("reference")
    above_ref = reference is not None and gen["acc_mean"] > reference["acc_mean"]
    if above_ref:
        sentence += (f" It scores above the reference ({gen['acc_mean']:.3f} vs {reference['acc_mean']:.3f}): the "
                     "reference is not the best model for these tasks, so its ratio to the reference overstates it.")
    return {"fewshot_margin": margins, "beats_fewshot": margins[best_fs] > 0 if best_fs is not None else None,
            "best_fewshot_baseline": best_fs, "above_reference": above_ref,
            "beats_retrieval": beats_retrieval, "beats_all_memorization": not beaten_by,
            "memorization_as_novel": sorted(as_novel), "beats_memorization_at_equal_novelty": not beaten_at_novelty,
            "beats_retrieval_and_baselines": beats_retrieval and not beaten_by,
            "memorization_at_least_as_good": beaten_by, "sentence": sentence,
            "novelty_iou_max_mean": gen_iou,
            "retrieval_novelty_iou_max_mean": retrieval["novelty_iou_max_mean"],
            # one verdict per distinct model: the modes that gave this same model, and which one speaks for them
            "same_model_as": [k for k in group if k != gen_key], "modes": modes,
            "duplicate_of": group[0] if group[0] != gen_key else None,
            # paired bootstrap intervals over tasks of accuracy differences (generator - other)
            "intervals": {"retrieval": vs_retrieval,
                          "best_memorization": {"key": best_key, **vs_best} if vs_best else None,
                          "fewshot": {k: d for k, d in vs_fewshot.items() if d}}}


CONTROL_PHRASES = {"shuffled": "another held-out task's condition", "random-string": "a random-string description",
                   "none": "the same generator told nothing"}


def controls_sentence(controls: dict[str, dict]) -> str:
    """"Its condition's margins: +12.0 points, 95% CI +8.1 to +15.9 over 32 tasks over another held-out
    task's condition; ...": each margin of ``overall.controls[GEN]`` (controls.py), named, and a
    warning unless every one is positive with an interval that excludes zero."""
    parts = []
    for control, m in controls.items():
        d = {"lo": m["ci_points"][0] / 100, "hi": m["ci_points"][1] / 100, "n_tasks": m["n_tasks"],
             "excludes_zero": m["excludes_zero"]}
        parts.append(f"{_points(m['margin_points'] / 100, d)} over {CONTROL_PHRASES.get(control, control)}")
    counts = all(m["margin_points"] > 0 and m["excludes_zero"] for m in controls.values())
    tail = "" if counts else " — the condition does not clearly carry the task"
    return f"Its condition's margins: {'; '.join(parts)}{tail}."


def finite(obj: Any) -> Any:
    """JSON has no inf/nan: they become None (the field's documentation says what None means)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


NOTES = {
    "acc_mean": "mean test accuracy over the evaluated held-out tasks",
    "balanced_acc_mean": "mean over tasks of the balanced accuracy (mean per-class recall): a constant "
                         "predictor scores 1/n_classes on every task, however imbalanced",
    "acc_ratio_to_trained": "mean over tasks of (method accuracy / reference accuracy on that task)",
    "novelty_iou_max_mean": "mean over tasks of the highest IoU between the model's misclassified test examples "
                            "and any zoo member's (1 = makes exactly a zoo member's mistakes)",
    "nn_aligned_dist_mean": "mean L2 distance to the nearest zoo member after weight-matching alignment; "
                            "compare with overall.zoo_nn_dist_median",
    "seconds_per_task": "wall seconds to obtain the weights for one task (generators: condition encoding + "
                        "sampling; retrieval: support-set evaluation of the zoo; fine-tuning: its start's seconds "
                        "+ steps x one single-task step); one-off costs are in setup_seconds",
    "flops_per_task": "approximate: 2 x params per example forward, 6 x params per example per training step; "
                      "null where not computable (generators)",
    "finetune": "'converged' = the zoo's own training budget in steps; k=0 is the start itself",
    "cost": "overall.cost[GENERATOR][START][DATA]: fine-tuning from START (shared: the pretrained start; scratch: "
            "a fresh init; zoo-best: the retrieved member) on DATA (support set, full train set) until test accuracy "
            "reaches the generator's, per task (mean, median, quartiles), against the generator's seconds",
    "adaptation_speedup": "fine-tuning seconds (obtaining the start + steps until test accuracy reaches the "
                          "generator's) / generation seconds; speedup_is_lower_bound when some task never "
                          "reached it within the budget (charged the whole budget)",
    "generator modes": "generator:<name> = one random sample; :central = sample(deterministic=True); "
                       ":best-of-K = the lowest support-loss of K samples (selection time included)",
    "intervals": "verdict intervals: paired bootstrap (2000 resamples of the held-out tasks) of the per-task "
                 "accuracy difference generator - other, 95% percentile interval",
    "same model": "verdict.same_model_as lists generator modes whose per-task accuracies are identical (a "
                  "deterministic generator's sample, central and best-of-K are one model); duplicate_of names the "
                  "mode whose verdict speaks for them",
    "oracle": "the descriptor-nearest member uses the held-out task's descriptor; it is a reference line, not a baseline",
    "controls": "overall.controls[GEN][CONTROL]: test accuracy of generator mode GEN minus that of its condition "
                "control in the same mode (shuffled: another held-out task's condition; random-string: the "
                "description replaced by a random string of its length; none: the same generator trained told "
                "nothing), in points, mean over tasks, with a paired bootstrap 95% interval (ci_points)",
    "mteb_accuracy_mean": "architectures with features only (LoRA sets): MTEB-style classification score of the "
                          "method's embeddings — logistic regression (lbfgs, C=1, max_iter=100) on the embeddings of "
                          "each task's train+test sentences, stratified k-fold (overall.mteb.folds), mean accuracy over "
                          "folds, then over tasks; the head is not read (embedding_classification.py)",
}
