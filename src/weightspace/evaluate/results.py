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
from weightspace.evaluate.cost import match_cost, steps_to_match
from weightspace.evaluate.finetuning import Curve
from weightspace.evaluate.methods import Method
from weightspace.evaluate.scoring import Scores

SCHEMA = "weightspace.eval/1"


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(statistics.fmean(values)) if values else None


def method_entry(ctx: ZooContext, m: Method, s: Scores, ref: Scores, zoo_nn_median: float) -> dict[str, Any]:
    ref_acc, ref_bal_acc = ref.acc, ref.bal_acc
    ratio = s.acc / ref_acc.clamp_min(1e-12)
    dist_mean = float(s.nn_dist.mean())
    return {
        "key": m.key, "kind": m.kind, "label": m.label, "description": m.description,
        "acc_mean": float(s.acc.mean()),
        "acc_std": float(s.acc.std()) if s.acc.numel() > 1 else 0.0,
        "balanced_acc_mean": float(s.bal_acc.mean()),
        "balanced_acc_ratio_to_trained": float((s.bal_acc / ref_bal_acc.clamp_min(1e-12)).mean()),
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


def generator_cost(gen: Method, gen_scores: Scores, curves: dict[str, Curve], retrieval: Method,
                   per_step: dict[str, float], n_params: int) -> dict[str, dict]:
    """Fine-tuning from the best zoo start until it reaches the generator's accuracy, per data source."""
    out = {}
    for data, curve in curves.items():
        steps, reached = steps_to_match(torch.tensor(curve.grid), torch.tensor(curve.acc), gen_scores.acc)
        cost = match_cost(steps, reached, budget_steps=curve.grid[-1], seconds_per_step=per_step[data],
                          start_seconds=_mean(retrieval.seconds) or 0.0,
                          generation_seconds=_mean(gen.seconds) or 0.0, n_params=n_params,
                          batch_examples=curve.examples_per_step)
        out[data] = cost.to_dict()
    return out


# Baselines a generator must beat: copies and combinations of zoo members. "merging" (task
# arithmetic, TIES) builds one model out of many members, which is memorization's next of kin.
BASELINE_KINDS = ("memorization", "merging")


def verdict(entries: dict[str, dict], gen_key: str) -> dict[str, Any]:
    """Does the generator beat retrieval and every memorization (and merging) baseline on mean
    test accuracy? And, where the evaluation has them, few-shot training on the same support set?"""
    gen = entries[gen_key]
    retrieval = entries["retrieval"]
    baselines = {k: e for k, e in entries.items() if e["kind"] in BASELINE_KINDS}
    beaten_by = sorted((k for k, e in baselines.items() if e["acc_mean"] >= gen["acc_mean"]),
                       key=lambda k: -baselines[k]["acc_mean"])
    beats_retrieval = gen["acc_mean"] > retrieval["acc_mean"]
    best_key = max(baselines, key=lambda k: baselines[k]["acc_mean"]) if baselines else None
    name = gen_key.split(":", 1)[-1]  # e.g. "hypernet:central"
    acc = f"{gen['acc_mean']:.3f}"
    if beats_retrieval and not beaten_by:
        sentence = (f"{name} beats retrieval ({acc} vs {retrieval['acc_mean']:.3f}) and every memorization "
                    f"baseline (best: {baselines[best_key]['label']} at {baselines[best_key]['acc_mean']:.3f})."
                    if best_key else f"{name} beats retrieval ({acc} vs {retrieval['acc_mean']:.3f}).")
    else:
        parts = []
        if not beats_retrieval:
            parts.append(f"does NOT beat retrieval ({acc} vs {retrieval['acc_mean']:.3f})")
        if beaten_by:
            top = baselines[beaten_by[0]]
            parts.append(f"does NOT beat {len(beaten_by)} of {len(baselines)} memorization baselines "
                         f"(best: {top['label']} at {top['acc_mean']:.3f})")
        sentence = f"{name} " + " and ".join(parts) + "."
    # The novelty-aware reading: a baseline that copies the zoo more closely (higher error IoU)
    # buys its accuracy by memorising, so compare only against baselines at least as novel.
    as_novel = {k: e for k, e in baselines.items()
                if e["novelty_iou_max_mean"] is not None and gen["novelty_iou_max_mean"] is not None
                and e["novelty_iou_max_mean"] <= gen["novelty_iou_max_mean"]}
    beaten_at_novelty = sorted(k for k, e in as_novel.items() if e["acc_mean"] >= gen["acc_mean"])
    sentence += (f" Against the {len(as_novel)} memorization baselines at equal or higher novelty it is "
                 + ("the most accurate." if not beaten_at_novelty else f"beaten by {', '.join(beaten_at_novelty)}."))
    fewshot = {k: e for k, e in entries.items() if e["kind"] == "fewshot"}
    margins = {k: gen["acc_mean"] - e["acc_mean"] for k, e in fewshot.items()}
    if fewshot:
        sentence += " Over training on the same support set: " + ", ".join(
            f"{fewshot[k]['label']} {margins[k] * 100:+.1f} points" for k in sorted(margins)) + "."
    return {"fewshot_margin": margins, "beats_fewshot": all(v > 0 for v in margins.values()) if margins else None,"beats_retrieval": beats_retrieval, "beats_all_memorization": not beaten_by,
            "memorization_as_novel": sorted(as_novel), "beats_memorization_at_equal_novelty": not beaten_at_novelty,
            "beats_retrieval_and_baselines": beats_retrieval and not beaten_by,
            "memorization_at_least_as_good": beaten_by, "sentence": sentence,
            "novelty_iou_max_mean": gen["novelty_iou_max_mean"],
            "retrieval_novelty_iou_max_mean": retrieval["novelty_iou_max_mean"]}


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
    "adaptation_speedup": "fine-tuning seconds (choosing the zoo start + steps until test accuracy reaches the "
                          "generator's) / generation seconds; speedup_is_lower_bound when some task never "
                          "reached it within the budget (charged the whole budget)",
    "generator modes": "generator:<name> = one random sample; :central = sample(deterministic=True); "
                       ":best-of-K = the lowest support-loss of K samples (selection time included)",
    "oracle": "the descriptor-nearest member uses the held-out task's descriptor; it is a reference line, not a baseline",
}
