"""Which methods answer the few-shot question, and which ones a generator has to beat there.

A user with a new task holds the zoo and the task's support set. Everything that uses only
those two is a *few-shot method*: the generators, retrieval, the memorization and merging
baselines, the multi-task network, the majority class, the support-set trainers of LoRA zoos,
fine-tuning on the support set from any start, including a generator's own output
("generate-then-k-steps", charged its generation seconds plus its steps). The reference, the
descriptor oracle, the condition ablations and fine-tuning on the full training data are not.

The *few-shot baselines* of a generator are the few-shot methods that train on the support set
without a generator's help: ``fewshot`` kinds (probe, support-set LoRA) and fine-tuning the best
zoo start on the support set, at every fixed budget and with its budget chosen by
cross-validation. A generator beats few-shot fine-tuning only when it beats the best of them.

Methods above the reference are flagged: the reference is meant to be the best trained model
for the task, so a few-shot method above it says the reference is weak, not that the method is
better than training on the task.
"""

from __future__ import annotations

from typing import Any, Mapping

# Kinds a user with only the zoo and the support set can run as they are.
FEWSHOT_KINDS = ("generator", "retrieval", "memorization", "merging", "multitask", "majority", "fewshot")


def is_support_finetune(e: Mapping[str, Any]) -> bool:
    """Fine-tuning on the support set for at least one step (k = 0 is its start)."""
    info = e.get("info") or {}
    if e.get("kind") != "finetune" or info.get("data") != "support":
        return False
    return bool(info.get("tuned")) or int(info.get("steps", 0)) > 0  # tuned: steps chosen per task


def generator_keys(entries: Mapping[str, Mapping[str, Any]]) -> set[str]:
    return {k for k, e in entries.items() if e.get("kind") == "generator"}


def fewshot_methods(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Every method a few-shot user could pick (generators and generate-then-k-steps included)."""
    return {k: e for k, e in entries.items() if e.get("kind") in FEWSHOT_KINDS or is_support_finetune(e)}


def fewshot_baselines(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Training on the support set without a generator: what a generator must beat."""
    gens = generator_keys(entries)
    return {k: e for k, e in entries.items()
            if e.get("kind") == "fewshot" or (is_support_finetune(e) and (e.get("info") or {}).get("start") not in gens)}


def is_generate_then_finetune(e: Mapping[str, Any], gens: set[str]) -> bool:
    return is_support_finetune(e) and (e.get("info") or {}).get("start") in gens


def contender_group(e: Mapping[str, Any], gens: set[str]) -> str:
    """generator | generate-then-finetune | support-training (no generator) | the kind of a zoo baseline."""
    if is_generate_then_finetune(e, gens):
        return "generate-then-finetune"
    if e.get("kind") == "fewshot" or is_support_finetune(e):
        return "support-training"
    return str(e.get("kind"))


def _best(methods: Mapping[str, Mapping[str, Any]]) -> str | None:
    return max(methods, key=lambda k: methods[k]["acc_mean"]) if methods else None


def best_fewshot(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The most accurate few-shot method, its cost, and the best of each family of them."""
    methods = fewshot_methods(entries)
    best = _best(methods)
    if best is None:
        return None
    gens = generator_keys(entries)
    groups = {
        "generator": {k: e for k, e in methods.items() if e["kind"] == "generator"},
        "generate_then_finetune": {k: e for k, e in methods.items() if is_generate_then_finetune(e, gens)},
        "fewshot_baseline": fewshot_baselines(entries),
        "zoo_baseline": {k: e for k, e in methods.items()
                         if e["kind"] in ("retrieval", "memorization", "merging", "multitask", "majority")},
    }
    e = methods[best]
    out = {"key": best, "label": e["label"], "acc_mean": e["acc_mean"], "seconds_per_task": e.get("seconds_per_task"),
           "best_of": {g: _best(ms) for g, ms in groups.items()}}
    secs = e.get("seconds_per_task")
    out["sentence"] = (f"The best few-shot method is {e['label']} at {e['acc_mean']:.3f}"
                       + (f" ({secs:.2g} s per task)" if secs is not None else "") + ".")
    return out


def above_reference(entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Methods (other than the reference) whose mean accuracy is above the reference's, best first."""
    ref = entries.get("reference")
    if ref is None:
        return []
    above = [k for k, e in entries.items() if k != "reference" and e["acc_mean"] > ref["acc_mean"]]
    return sorted(above, key=lambda k: -entries[k]["acc_mean"])


def above_reference_sentence(entries: Mapping[str, Mapping[str, Any]]) -> str | None:
    above = above_reference(entries)
    if not above:
        return None
    ref = entries["reference"]["acc_mean"]
    named = ", ".join(f"{entries[k]['label']} ({entries[k]['acc_mean']:.3f})" for k in above[:3])
    more = f" and {len(above) - 3} more" if len(above) > 3 else ""
    return (f"{len(above)} method{'s are' if len(above) > 1 else ' is'} above the reference ({ref:.3f}): {named}{more}. "
            "The reference is not the best model for these tasks, so ratios to it overstate every method.")
