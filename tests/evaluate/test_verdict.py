import math

from weightspace.evaluate.results import finite, verdict


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
    assert not v["beats_memorization_at_equal_novelty"] and "beaten by zoo-mean" in v["sentence"]
