"""End to end on a tiny real zoo: build_zoo (digits-rotate) + a pca-gaussian generator, then
`weightspace eval`; checks the results.json schema and the facts every run must satisfy."""

import json

import pytest
import torch

from weightspace.cli import main
from weightspace.cli import eval_cmd  # noqa: F401  (registers `weightspace eval`)

METHOD_FIELDS = {"acc_mean", "acc_ratio_to_trained", "novelty_iou_max_mean", "nn_aligned_dist_mean",
                 "seconds_per_task", "per_task", "kind", "label", "flops_per_task", "balanced_acc_mean"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from weightspace.generate import make_generator, zoo_data
    from weightspace.nets import MLP
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.recipe import TrainConfig

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("eval")
    family = make_family("digits-rotate", n_tasks=6, n_heldout=2)
    arch = MLP(input_shape=(1, 10, 10), n_classes=10, hidden=(8,))
    zoo = build_zoo(root / "zoo", family, arch, TrainConfig(steps=40), workers=0, progress=False)
    gen = make_generator("pca-gaussian", support_draws=2).fit(zoo_data.from_zoo(zoo, condition="support", align=True))
    gen.save(root / "gen")
    return root


@pytest.fixture(scope="module")
def results(tiny):
    code = main(["eval", str(tiny / "gen"), "--zoo", str(tiny / "zoo"), "--out", str(tiny / "out"),
                 "--finetune-steps", "0,5", "--budget", "20", "--eval-every", "5", "--quiet"])
    assert code == 0
    return json.loads((tiny / "out" / "results.json").read_text())


def test_schema(results):
    assert results["schema"] == "weightspace.eval/1"
    assert len(results["tasks"]) == 2
    methods = results["methods"]
    expected = {"reference", "generator:pca-gaussian", "retrieval", "oracle:descriptor", "interpolation", "zoo-mean",
                "noise:0.01", "noise:0.2", "average:16", "coordinate-gaussian", "pca-gaussian-baseline",
                "finetune:zoo-best@0", "finetune:zoo-best:support@5", "finetune:zoo-best:train@converged",
                "finetune:pca-gaussian:central:support@converged", "generator:pca-gaussian:central",
                "generator:pca-gaussian:best-of-8", "majority", "ablation:pca-gaussian:shuffled"}
    assert expected <= set(methods)
    for key, e in methods.items():
        assert METHOD_FIELDS <= set(e), key
        assert len(e["per_task"]) == 2
        assert 0.0 <= e["acc_mean"] <= 1.0 and 0.0 <= e["novelty_iou_max_mean"] <= 1.0
    assert sorted(results["ranking"]) == sorted(methods)
    overall = results["overall"]
    for field in ("zoo_nn_dist_median", "verdict", "cost", "best_fewshot", "above_reference"):
        assert field in overall
    assert results["card"]["kind"] == "eval" and results["zoo"].endswith("zoo")


def test_facts_every_run_satisfies(results):
    m = results["methods"]
    assert m["reference"]["acc_ratio_to_trained"] == pytest.approx(1.0)
    # Retrieval returns a zoo member: same mistakes, zero aligned distance.
    assert m["retrieval"]["novelty_iou_max_mean"] == pytest.approx(1.0)
    assert m["retrieval"]["nn_aligned_dist_mean"] < 1e-4
    # Zero fine-tuning steps is the start itself.
    assert m["finetune:zoo-best@0"]["acc_mean"] == m["retrieval"]["acc_mean"]
    assert m["finetune:pca-gaussian:central@0"]["acc_mean"] == m["generator:pca-gaussian:central"]["acc_mean"]
    for mode in ("", ":central", ":best-of-8"):
        assert m[f"generator:pca-gaussian{mode}"]["seconds_per_task"] > 0
        assert f"generator:pca-gaussian{mode}" in results["overall"]["verdict"]
    assert results["overall"]["zoo_nn_dist_median"] > 0
    assert m["ablation:pca-gaussian:shuffled"]["kind"] == "ablation"
    # support-set condition: a shuffled control, and no random-string one (it reads no description)
    controls = results["overall"]["controls"]
    assert set(controls) == {"generator:pca-gaussian:central"} and list(controls["generator:pca-gaussian:central"]) == ["shuffled"]
    shuffled = controls["generator:pca-gaussian:central"]["shuffled"]
    assert shuffled["margin_points"] == pytest.approx(100 * (m["generator:pca-gaussian:central"]["acc_mean"]
                                                             - m["ablation:pca-gaussian:shuffled"]["acc_mean"]))
    assert "over another held-out task's condition" in results["overall"]["verdict"]["generator:pca-gaussian:central"]["sentence"]
    # an MLP exposes no features: no MTEB-style score, and none of its fields
    assert results["overall"]["mteb"] is None and not any("mteb_accuracy_mean" in e for e in m.values())
    # The majority class on 10 balanced digit classes: a tenth of the test set, and chance balanced.
    assert m["majority"]["kind"] == "majority" and m["majority"]["balanced_acc_mean"] == pytest.approx(0.1)
    assert m["reference"]["balanced_acc_mean"] > 0.1 and m["reference"]["balanced_acc_ratio_to_trained"] == pytest.approx(1.0)


def test_cost_and_verdict_are_consistent(results):
    overall = results["overall"]
    gen, ret = results["methods"]["generator:pca-gaussian"], results["methods"]["retrieval"]
    v = overall["verdict"]["generator:pca-gaussian"]
    assert v["beats_retrieval"] == (gen["acc_mean"] > ret["acc_mean"])
    assert ("does NOT beat retrieval" in v["sentence"]) == (not v["beats_retrieval"])
    cost = overall["cost"]["generator:pca-gaussian"]
    assert set(cost) == {"shared", "scratch", "zoo-best"}  # overall.cost[GEN][START][DATA]
    for start in cost:
        for data in ("support", "train"):
            c = cost[start][data]
            assert c["budget_steps"] == 20
            assert 0 <= c["finetune_steps_to_match"] <= 20
            q1, median, q3 = c["finetune_steps_to_match_quartiles"]
            assert q1 <= median <= q3 and median == c["finetune_steps_to_match_median"]
            assert c["speedup_is_lower_bound"] == (c["tasks_not_reached"] > 0)
            assert c["adaptation_speedup"] == pytest.approx(c["finetune_seconds_to_match"] / c["generation_seconds"])
            curve = overall["finetune_curves"][start][data]
            assert curve["grid"] == [0, 5, 10, 15, 20]
    # a fresh init needs at least as long as the start retrieval picked, on every task's median
    assert cost["scratch"]["train"]["finetune_steps_to_match_median"] >= cost["zoo-best"]["train"]["finetune_steps_to_match_median"]
    # the shared start and a fresh init cost nothing to obtain; the zoo-best start costs ranking the zoo
    assert cost["shared"]["support"]["start_seconds"] == 0 and cost["zoo-best"]["support"]["start_seconds"] > 0
    assert "finetune:shared:support@5" in results["methods"] and "finetune:shared:support@cv" in results["methods"]


def test_bad_input_is_one_sentence(tiny, capsys):
    assert main(["eval", str(tiny / "nope"), "--zoo", str(tiny / "zoo"), "--out", str(tiny / "o2")]) == 2
    assert "not a generator directory" in capsys.readouterr().err
    assert main(["eval", str(tiny / "gen"), "--zoo", str(tiny / "zoo"), "--out", str(tiny / "o2"),
                 "--finetune-steps", "ten"]) == 2
    assert main(["eval", str(tiny / "gen"), "--zoo", str(tiny / "zoo"), "--out", str(tiny / "o2"),
                 "--finetune-steps", "0,50", "--budget", "20", "--quiet"]) == 2
    assert "exceed the budget" in capsys.readouterr().err
    assert not (tiny / "o2" / "results.json").exists()


def test_shuffled_control_gives_each_task_another_tasks_central_output(tiny):
    from weightspace.evaluate.context import load_context
    from weightspace.evaluate.controls import control_methods
    from weightspace.evaluate.generated import generator_methods, load_generators

    ctx = load_context(tiny / "zoo")
    gen = load_generators([tiny / "gen"])[0]
    central = generator_methods(ctx, gen, tiny / "gen", "g", ["central"])[0]
    shuffled = control_methods(ctx, gen, "g")[0]
    assert shuffled.key == "ablation:g:shuffled" and len(shuffled.weights) == len(ctx.tasks) == 2
    for t in range(2):
        for name, value in shuffled.weights[t].items():
            assert torch.equal(value, central.weights[1 - t][name]), name


def test_the_same_generator_told_nothing_is_reported_as_the_none_control(tiny):
    from weightspace.evaluate.harness import EvalConfig, evaluate
    from weightspace.generate import make_generator, zoo_data
    from weightspace.zoo.store import Zoo

    zoo = Zoo.open(tiny / "zoo")
    make_generator("pca-gaussian", support_draws=2).fit(zoo_data.from_zoo(zoo, condition="none", align=True)).save(tiny / "none")
    make_generator("pca-gaussian", support_draws=3).fit(zoo_data.from_zoo(zoo, condition="none", align=True)).save(tiny / "other")
    cfg = EvalConfig(finetune_steps=(0,), budget=5, eval_every=5, cv_folds=0, starts=(), finetune_from="none",
                     multitask_tasks=-1, generator_modes=("sample", "central"))
    results = evaluate([tiny / "gen", tiny / "other", tiny / "none"], tiny / "zoo", cfg)
    controls, m = results["overall"]["controls"], results["methods"]
    twin = "generator:pca-gaussian@none"  # the second and third share the registry name; other options: not a twin
    assert set(controls) == {"generator:pca-gaussian", "generator:pca-gaussian:central"}
    assert controls["generator:pca-gaussian"] == {"none": controls["generator:pca-gaussian"]["none"]}  # sample: none only
    none = controls["generator:pca-gaussian:central"]["none"]
    assert none["control_key"] == f"{twin}:central" and none["n_tasks"] == 2
    assert none["margin_points"] == pytest.approx(100 * (m["generator:pca-gaussian:central"]["acc_mean"] - m[f"{twin}:central"]["acc_mean"]))
    assert list(controls["generator:pca-gaussian:central"]) == ["shuffled", "none"]
    assert "over the same generator told nothing" in results["overall"]["verdict"]["generator:pca-gaussian:central"]["sentence"]
