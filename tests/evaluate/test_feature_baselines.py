import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from text_stack import require_text_stack

require_text_stack()
from text_stack import model  # noqa: E402,F401  (fixtures)

from weightspace.config import to_dict
from weightspace.errors import WeightspaceError
from weightspace.nets.predict import predict_members
from weightspace.nets.mlp import MLP
from weightspace.nets.lora_minilm.base_model import mean_pool
from weightspace.nets.lora_minilm.forward import delta_weights, split_hidden
from weightspace.nets.lora_minilm import LoRAMiniLM
from weightspace.adapt.head_refit import logistic_head
from weightspace.adapt.task_vectors import MergedWeights, TaskVectors, rank_r_factors, task_arithmetic, ties_merge, trim
from weightspace.evaluate.feature_baselines import feature_methods, frozen_weights, probe_method, support_fit_method
from weightspace.evaluate.merged import ARITHMETIC_GRID, TIES_GRID
from weightspace.nets.lora_minilm.train import LoRATrainConfig
from weightspace.zoo.manifest import MemberRecord

ARCH = LoRAMiniLM(inputs="hidden")
HEAD = ("head.weight", "head.bias")  # refitted per task, so never merged


@pytest.fixture(scope="module")
def hidden_tasks():
    from weightspace.tasks.chatterbot import ChatterbotFamily

    torch.set_num_threads(1)
    fam = ChatterbotFamily(inputs="hidden", max_per_class=24, support_per_class=4)
    return [fam.task(t) for t in fam.heldout_task_ids()[:2]]


def random_members(arch: LoRAMiniLM, m: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Stacked LoRA sets with nonzero B (a trained-looking zoo, made by hand)."""
    g = torch.Generator().manual_seed(seed)
    return {t.name: torch.randn((m, *t.shape), generator=g) * 0.05 for t in arch.spec().tensors}


def fake_context(tasks, m: int = 3, cfg: LoRATrainConfig | None = None):
    """The fields of ZooContext that the LoRA baselines read, filled with a hand-made zoo."""
    cfg = cfg or LoRATrainConfig(steps=2, batch_size=4)
    records = [MemberRecord(f"t{i}|seed=0|step={cfg.steps}", f"t{i}", (), 0, "independent:peft", to_dict(cfg))
               for i in range(m)]
    return SimpleNamespace(arch=ARCH, spec=ARCH.spec(), params=random_members(ARCH, m), records=records, tasks=tasks)


def stack(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.unsqueeze(0) for k, v in weights.items()}


def frozen_embeddings(model, x: torch.Tensor) -> torch.Tensor:
    """The frozen model's sentence embedding from hidden inputs, by the base model's own path."""
    hidden, mask = split_hidden(x)
    with torch.no_grad():
        return mean_pool(model.run_layers(hidden, mask, ARCH.first_layer, model.n_layers), mask)


# ----- the probe as a LoRA set ------------------------------------------------------------------
def test_probe_as_lora_reproduces_sklearn(hidden_tasks, model):
    task = hidden_tasks[0]
    probe, = probe_method(fake_context([task]), frozen_weights(ARCH))
    weights = probe.weights[0]
    assert all(weights[k].abs().sum() == 0 for k in weights if "lora_" in k)  # ΔW = 0
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(frozen_embeddings(model, task.support_x).double().numpy(),
                                                       task.support_y.numpy())
    test_emb = frozen_embeddings(model, task.x_test).double().numpy()
    preds, _ = predict_members(ARCH, stack(weights), task.x_test, task.y_test)
    assert torch.equal(preds[0], torch.from_numpy(clf.predict(test_emb)))
    module = ARCH.module()
    module.load_state_dict(weights)
    with torch.no_grad():
        proba = torch.softmax(module(task.x_test).double(), -1)[:, 1]
    assert np.allclose(proba.numpy(), clf.predict_proba(test_emb)[:, 1], atol=1e-5)
    assert probe.seconds[0] > 0 and probe.kind == "fewshot"


def test_logistic_head_multiclass_with_an_absent_class():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(30, 5, generator=g)
    y = torch.tensor([0, 2, 3] * 10)
    emb[y == 2] += 2.0
    weight, bias = logistic_head(emb, y, n_classes=4)
    clf = LogisticRegression(max_iter=1000).fit(emb.double().numpy(), y.numpy())
    probe = torch.randn(50, 5, generator=g)
    logits = probe @ weight.T + bias
    assert (logits.argmax(1) != 1).all()  # class 1 was never seen: never predicted
    assert np.allclose(torch.softmax(logits.double(), 1)[:, [0, 2, 3]].numpy(), clf.predict_proba(probe.double().numpy()),
                       atol=1e-5)


def test_logistic_head_needs_two_classes():
    with pytest.raises(WeightspaceError, match="2 classes"):
        logistic_head(torch.randn(4, 3), torch.ones(4, dtype=torch.long), 2)


# ----- merging maths ----------------------------------------------------------------------------
def vector(a, b):
    """A hand-made task vector with two modules, "a" (1, 3) and "b" (1, 2)."""
    return {"a": torch.tensor([a], dtype=torch.float64), "b": torch.tensor([b], dtype=torch.float64)}


def hand_vectors():
    return [vector([3.0, -1.0, 0.5], [-4.0, 0.2]), vector([-2.0, 0.1, 1.0], [5.0, 0.3]), vector([1.0, -6.0, 0.2], [-0.9, 0.1])]


def test_trim_keeps_the_largest_entries_over_all_modules():
    kept = trim(hand_vectors()[0], keep=0.4)  # 2 of 5 entries: 3 in "a" and -4 in "b"
    assert kept["a"].tolist() == [[3.0, 0.0, 0.0]] and kept["b"].tolist() == [[-4.0, 0.0]]


def test_ties_matches_a_hand_computation():
    # trimmed (top 2 of 5): a=[3,0,0] b=[-4,0] | a=[-2,0,0] b=[5,0] | a=[1,-6,0] b=[0,0]
    # elected signs of the trimmed sums a=[2,-6,0] b=[1,0]: [+,-,0] and [+,0]
    # disjoint means: a0 = mean(3, 1) = 2 (the -2 disagrees), a1 = -6, b0 = 5 (the -4 disagrees)
    merged = ties_merge(hand_vectors(), keep=0.4)
    assert merged["a"].tolist() == [[2.0, -6.0, 0.0]] and merged["b"].tolist() == [[5.0, 0.0]]
    with pytest.raises(WeightspaceError, match="fraction"):
        ties_merge(hand_vectors(), keep=0.0)


def test_task_arithmetic_of_one_member_recovers_its_delta():
    member = random_members(ARCH, 1, seed=3)
    vectors = TaskVectors(ARCH, member, skip=HEAD)
    assert len(vectors) == 1
    adapters = MergedWeights(ARCH, task_arithmetic(vectors), skip=HEAD).at(1.0)
    original = delta_weights(ARCH, {k: v[0] for k, v in member.items()})
    for key, delta in delta_weights(ARCH, adapters).items():
        assert torch.allclose(delta, original[key], atol=1e-5)
    sums = task_arithmetic(TaskVectors(ARCH, random_members(ARCH, 3), skip=HEAD))
    assert all(torch.linalg.matrix_rank(s).item() > ARCH.rank for s in sums.values())  # why truncation is needed


def test_truncation_is_the_best_rank_r_approximation():
    g = torch.Generator().manual_seed(1)
    delta = torch.randn(20, 12, generator=g, dtype=torch.float64)
    a, b = rank_r_factors(delta, rank=3, scaling=2.0)
    assert a.shape == (3, 12) and b.shape == (20, 3)
    approx = 2.0 * b.double() @ a.double()
    s = torch.linalg.svdvals(delta)
    assert torch.linalg.matrix_rank(approx).item() <= 3
    assert math.isclose(float((delta - approx).norm() ** 2), float((s[3:] ** 2).sum()), rel_tol=1e-5)
    other = torch.randn(20, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 12, generator=g, dtype=torch.float64)
    assert (delta - approx).norm() < (delta - other).norm()
    low = torch.randn(20, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 12, generator=g, dtype=torch.float64)
    a, b = rank_r_factors(low, rank=3, scaling=1.0)  # rank 2 < r: recovered exactly
    assert torch.allclose(b.double() @ a.double(), low, atol=1e-5)


# ----- every method, end to end -----------------------------------------------------------------
def test_every_method_returns_lora_sets_for_every_task(hidden_tasks, model):
    ctx = fake_context(hidden_tasks)
    methods = feature_methods(ctx, seed=0)
    assert [m.key for m in methods] == ["probe", "support-lora", "task-arithmetic", "ties"]
    for method in methods:
        assert len(method.weights) == len(method.seconds) == len(ctx.tasks)
        assert all(s > 0 for s in method.seconds)
        for weights in method.weights:
            assert set(weights) == set(ctx.spec.names)
            for t in ctx.spec.tensors:
                assert weights[t.name].shape == t.shape and weights[t.name].dtype == torch.float32
                assert torch.isfinite(weights[t.name]).all()
        preds, _ = predict_members(ARCH, {n: torch.stack([w[n] for w in method.weights])[:1] for n in ctx.spec.names},
                                   ctx.tasks[0].x_test, ctx.tasks[0].y_test)
        assert preds.shape == (1, len(ctx.tasks[0].y_test))
    merges = {m.key: m for m in methods if m.kind == "merging"}
    assert all(m.setup_seconds > 0 for m in merges.values())
    assert all(lam in TIES_GRID for lam in merges["ties"].info["lambda"])
    assert all(any(math.isclose(lam * 3, c) for c in ARITHMETIC_GRID) for lam in merges["task-arithmetic"].info["lambda"])
    again, = support_fit_method(ctx, 0)  # seeded per task: the same weights again
    assert all(torch.equal(again.weights[t][n], methods[1].weights[t][n])
               for t in range(len(ctx.tasks)) for n in ctx.spec.names)
    assert again.info["seeds"][0] != again.info["seeds"][1]


def test_non_lora_zoo_is_refused():
    ctx = SimpleNamespace(arch=MLP((4,), 2), tasks=[])
    with pytest.raises(WeightspaceError, match="LoRA zoo"):
        feature_methods(ctx)


def test_support_fits_on_a_pool_rebuild_each_task_by_id_and_train_the_same_lora():
    from weightspace.tasks.chatterbot import ChatterbotFamily
    from weightspace.zoo.workers import WorkerPool

    fam = ChatterbotFamily(inputs="hidden", max_per_class=24, support_per_class=4)
    ctx = fake_context([fam.task(fam.heldout_task_ids()[0])])
    (here,) = support_fit_method(ctx, 0)
    with WorkerPool(0) as pool:  # the payload path (task id and recipe out, numpy back) without processes
        ctx.family, ctx.pool = fam, pool
        (shipped,) = support_fit_method(ctx, 0)
    assert shipped.info["seeds"] == here.info["seeds"] and shipped.seconds[0] > 0
    for n in ctx.spec.names:
        torch.testing.assert_close(shipped.weights[0][n], here.weights[0][n], rtol=1e-4, atol=1e-5)


def test_scoring_from_the_mteb_stage_features_predicts_what_the_networks_predict(hidden_tasks):
    from weightspace.evaluate.embedding_classification import embedding_scores_and_features
    from weightspace.evaluate.methods import Method
    from weightspace.evaluate.scoring import heads_on_features

    ctx = fake_context(hidden_tasks, m=3)
    methods = []
    for i in range(3):  # three LoRA sets; the second and third share a body, not a head
        m = Method(f"m{i}", "generator", "m", "m")
        for _ in ctx.tasks:
            weights = {n: ctx.params[n][min(i, 1)].clone() for n in ctx.spec.names}
            weights["head.weight"] = ctx.params["head.weight"][i] * 20  # heads that disagree on some inputs
            m.add(weights, 0.0)
        methods.append(m)
    _, features = embedding_scores_and_features(ctx, methods, folds=2)
    assert [len(b) for b in features.bodies] == [2, 2] and features.owner[0] == [0, 1, 1]
    for t, pred in heads_on_features(ctx, methods, features):
        task = ctx.tasks[t]
        direct, _ = predict_members(ARCH, {n: torch.stack([m.weights[t][n] for m in methods]) for n in ctx.spec.names},
                                    task.x_test, task.y_test)
        assert pred.shape == direct.shape and int((pred != direct).sum()) <= 1  # float rounding may flip one
