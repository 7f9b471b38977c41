import math

import pytest

from weightspace.errors import WeightspaceError
from weightspace.evaluate.intervals import difference, paired_bootstrap
from weightspace.evaluate.results import finite, identical_generator_modes, verdict


def entries(gen_acc, retrieval_acc=0.8, noise_acc=0.7, mean_acc=0.2):
    def e(kind, acc, label, **info):
        return {"kind": kind, "acc_mean": acc, "label": label, "novelty_iou_max_mean": 0.5, "info": info}

    return {"generator:g": e("generator", gen_acc, "g", name="g"), "retrieval": e("retrieval", retrieval_acc, "retrieval"),
            "oracle:descriptor": e("oracle", 0.99, "oracle"), "noise:0.01": e("memorization", noise_acc, "noise"),
            "zoo-mean": e("memorization", mean_acc, "mean"), "reference": e("reference", 0.95, "ref")}


def test_generator_that_beats_everything():
    v = verdict(entries(0.85), "generator:g")
    assert v["beats_retrieval_and_baselines"] and v["memorization_at_least_as_good"] == []
    assert v["sentence"].startswith("g beats retrieval (0.850 vs 0.800)")


def test_oracle_and_reference_are_not_baselines():
    # Both score far above the generator, yet the generator still "beats retrieval and the baselines".
    assert verdict(entries(0.85), "generator:g")["beats_all_memorization"]


def test_generator_that_loses_says_so():
    v = verdict(entries(0.75, noise_acc=0.76), "generator:g")
    assert not v["beats_retrieval"] and v["memorization_at_least_as_good"] == ["noise:0.01"]
    assert "does NOT beat retrieval (0.750 vs 0.800)" in v["sentence"]
    assert "does NOT beat 1 of 2 memorization baselines" in v["sentence"]


def test_a_tie_is_not_a_win():
    v = verdict(entries(0.8, noise_acc=0.8), "generator:g")
    assert not v["beats_retrieval"] and "noise:0.01" in v["memorization_at_least_as_good"]


def test_finite_replaces_inf_and_nan():
    assert finite({"a": [1.0, math.inf], "b": {"c": math.nan}, "d": "x"}) == {"a": [1.0, None], "b": {"c": None}, "d": "x"}


def test_novelty_aware_reading_ignores_baselines_that_copy_more():
    es = entries(0.75, noise_acc=0.76)
    es["generator:g"]["novelty_iou_max_mean"] = 0.4
    es["noise:0.01"]["novelty_iou_max_mean"] = 0.95  # more accurate, but it copies the zoo's mistakes
    es["zoo-mean"]["novelty_iou_max_mean"] = 0.3
    v = verdict(es, "generator:g")
    assert not v["beats_all_memorization"]
    assert v["memorization_as_novel"] == ["zoo-mean"] and v["beats_memorization_at_equal_novelty"]
    es["zoo-mean"]["acc_mean"] = 0.9
    v = verdict(es, "generator:g")
    assert not v["beats_memorization_at_equal_novelty"]
    assert "The only memorization baseline at least as novel (mean, max error IoU 0.30 ≤ 0.40) is at least as accurate." \
        in v["sentence"]


# --- sentences that stay true when a set is empty ------------------------------------------


def test_no_baseline_at_least_as_novel_is_said_plainly():
    es = entries(0.85)
    es["generator:g"]["novelty_iou_max_mean"] = 0.1  # more novel than every baseline
    v = verdict(es, "generator:g")
    assert v["memorization_as_novel"] == [] and v["beats_memorization_at_equal_novelty"]
    assert "Against the 0" not in v["sentence"] and "most accurate" not in v["sentence"]
    assert "No memorization baseline is at least as novel as it (max error IoU ≤ 0.10)" in v["sentence"]


def test_no_memorization_baselines_at_all():
    es = {k: e for k, e in entries(0.85).items() if e["kind"] not in ("memorization",)}
    v = verdict(es, "generator:g")
    assert v["beats_all_memorization"]
    assert "the evaluation has no memorization baseline to compare with" in v["sentence"]
    assert "every memorization baseline" not in v["sentence"] and "novel" not in v["sentence"]


def test_one_and_several_baselines_at_least_as_novel():
    es = entries(0.85)
    es["generator:g"]["novelty_iou_max_mean"] = 0.5
    es["noise:0.01"]["novelty_iou_max_mean"] = 0.9
    v = verdict(es, "generator:g")  # only zoo-mean (0.5) is as novel
    assert "more accurate than the only memorization baseline at least as novel (mean" in v["sentence"]
    v = verdict(entries(0.85), "generator:g")  # both at 0.5
    assert "the most accurate of the 2 memorization baselines at least as novel" in v["sentence"]


# --- one verdict per distinct model -------------------------------------------------------


def _modes(per_task_by_mode):
    es = {k: e for k, e in entries(0.85).items() if k != "generator:g"}
    for mode, accs in per_task_by_mode.items():
        key = "generator:g" if mode == "sample" else f"generator:g:{mode}"
        es[key] = {"kind": "generator", "acc_mean": sum(accs) / len(accs), "label": f"g ({mode})",
                   "novelty_iou_max_mean": 0.5, "nn_aligned_dist_mean": 1.5, "info": {"name": "g", "mode": mode},
                   "per_task": [{"acc": a} for a in accs]}
    for k in ("retrieval", "noise:0.01", "zoo-mean"):
        es[k]["per_task"] = [{"acc": es[k]["acc_mean"]}] * 3
    return es


def test_identical_generator_modes_share_one_verdict():
    same = [0.84, 0.85, 0.86]
    es = _modes({"sample": same, "central": list(same), "best-of-8": list(same)})
    groups = identical_generator_modes(es)
    assert groups == {"generator:g": ["generator:g", "generator:g:central", "generator:g:best-of-8"]}
    first, central = verdict(es, "generator:g"), verdict(es, "generator:g:central")
    assert first["duplicate_of"] is None and central["duplicate_of"] == "generator:g"
    assert first["same_model_as"] == ["generator:g:central", "generator:g:best-of-8"]
    assert first["sentence"].startswith("g (sample = central = best-of-8: the same model) beats retrieval")
    assert first["sentence"] == central["sentence"]


def test_modes_that_differ_keep_their_own_verdicts():
    es = _modes({"sample": [0.84, 0.85, 0.86], "central": [0.84, 0.85, 0.87], "best-of-8": [0.84, 0.85, 0.87]})
    assert identical_generator_modes(es) == {"generator:g": ["generator:g"],
                                             "generator:g:central": ["generator:g:central", "generator:g:best-of-8"]}
    v = verdict(es, "generator:g")
    assert v["duplicate_of"] is None and v["same_model_as"] == [] and v["sentence"].startswith("g beats")


def test_verdict_carries_paired_intervals_when_per_task_accuracies_exist():
    es = _modes({"sample": [0.84, 0.85, 0.86]})
    v = verdict(es, "generator:g")
    d = v["intervals"]["retrieval"]
    assert d["n_tasks"] == 3 and d["mean_diff"] == pytest.approx(0.05)
    assert "(0.850 vs 0.800; +0.050, 95% CI +0.040 to +0.060 over 3 tasks)" in v["sentence"]
    assert v["intervals"]["best_memorization"]["key"] == "noise:0.01"
    assert verdict(entries(0.85), "generator:g")["intervals"]["retrieval"] is None  # no per-task data: no interval


# --- paired bootstrap ---------------------------------------------------------------------


def test_bootstrap_interval_excludes_zero_for_a_consistent_gain():
    b = [0.90, 0.80, 0.95, 0.70, 0.85, 0.88, 0.92, 0.75]
    a = [x + 0.01 + 0.002 * (i % 3) for i, x in enumerate(b)]  # better on every task
    mean, lo, hi = paired_bootstrap(a, b)
    assert 0 < lo <= mean <= hi and mean == pytest.approx(0.012, abs=1e-3)
    assert difference(a, b)["excludes_zero"]


def test_bootstrap_interval_includes_zero_for_noise():
    b = [0.9] * 8
    a = [0.9 + d for d in (0.02, -0.02, 0.01, -0.01, 0.03, -0.03, 0.0, 0.001)]
    mean, lo, hi = paired_bootstrap(a, b)
    assert lo < 0 < hi and mean == pytest.approx(0.001 / 8)
    assert not difference(a, b)["excludes_zero"]


def test_bootstrap_is_seeded_and_degenerate_cases_are_exact():
    a, b = [0.1, 0.5, 0.9, 0.3], [0.2, 0.2, 0.2, 0.2]
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)
    assert paired_bootstrap([0.9, 0.8], [0.8, 0.7]) == pytest.approx((0.1, 0.1, 0.1))  # same gain everywhere
    with pytest.raises(WeightspaceError, match="same tasks"):
        paired_bootstrap([0.1, 0.2], [0.1])


# --- few-shot fine-tuning and the reference -----------------------------------------------


def _with_finetunes(gen_acc, ft10=0.83, cv=0.86, gen_ft=0.88, ref=0.95, per_task=False):
    es = entries(gen_acc)
    es["reference"]["acc_mean"] = ref

    def ft(acc, start, steps, **extra):
        return {"kind": "finetune", "acc_mean": acc, "label": f"ft {start} {steps}", "novelty_iou_max_mean": 0.5,
                "info": {"start": start, "data": "support", "steps": steps, **extra}}

    es["finetune:zoo-best:support@10"] = ft(ft10, "retrieval", 10)
    es["finetune:zoo-best:support@cv"] = ft(cv, "retrieval", "cv", tuned=True)
    es["finetune:zoo-best@0"] = ft(0.8, "retrieval", 0)  # the start itself, not a fine-tune
    es["finetune:zoo-best:train@converged"] = {**ft(0.97, "retrieval", 200), "info": {"start": "retrieval", "data": "train", "steps": 200}}
    es["finetune:g:support@10"] = ft(gen_ft, "generator:g", 10)  # generate-then-k-steps
    if per_task:
        for k, e in es.items():
            e["per_task"] = [{"acc": e["acc_mean"] + d} for d in (-0.01, 0.0, 0.01, 0.005)]
    return es


def test_fewshot_finetuning_that_wins_is_named_with_its_margin():
    es = _with_finetunes(0.85, per_task=True)
    v = verdict(es, "generator:g")
    assert v["beats_fewshot"] is False and v["best_fewshot_baseline"] == "finetune:zoo-best:support@cv"
    # generate-then-k-steps and full-data fine-tuning are not baselines of the generator; k=0 is retrieval
    assert set(v["fewshot_margin"]) == {"finetune:zoo-best:support@10", "finetune:zoo-best:support@cv"}
    assert v["fewshot_margin"]["finetune:zoo-best:support@cv"] == pytest.approx(-0.01)
    assert "It does NOT beat few-shot training on the same support set (best of 2: ft retrieval cv at 0.860; -1.0 points" in v["sentence"]
    assert "95% CI" in v["sentence"] and v["intervals"]["fewshot"]["finetune:zoo-best:support@cv"]["mean_diff"] == pytest.approx(-0.01)


def test_generator_that_beats_fewshot_finetuning_says_so():
    v = verdict(_with_finetunes(0.9), "generator:g")
    assert v["beats_fewshot"] is True and "It beats few-shot training on the same support set" in v["sentence"]
    assert not v["above_reference"]


def test_best_fewshot_method_includes_generate_then_finetune_and_excludes_full_data():
    from weightspace.evaluate.contenders import best_fewshot

    best = best_fewshot(_with_finetunes(0.85))
    assert best["key"] == "finetune:g:support@10"  # 0.88; full-data fine-tuning (0.97) and the oracle (0.99) are out
    assert best["best_of"]["generate_then_finetune"] == "finetune:g:support@10"
    assert best["best_of"]["fewshot_baseline"] == "finetune:zoo-best:support@cv"
    assert best["best_of"]["generator"] == "generator:g"


def test_methods_above_the_reference_are_flagged():
    from weightspace.evaluate.contenders import above_reference, above_reference_sentence

    es = _with_finetunes(0.9, ref=0.84)
    assert above_reference(es)[:2] == ["oracle:descriptor", "finetune:zoo-best:train@converged"]
    assert "finetune:zoo-best:support@cv" in above_reference(es) and "retrieval" not in above_reference(es)
    assert "above the reference (0.840)" in above_reference_sentence(es)
    v = verdict(es, "generator:g")
    assert v["above_reference"] and "It scores above the reference (0.900 vs 0.840)" in v["sentence"]
    assert above_reference_sentence(_with_finetunes(0.85)) is not None  # the oracle (0.99) is above 0.95
