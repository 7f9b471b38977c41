"""The MTEB-style classification score (evaluate/embedding_classification.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.evaluate import embedding_classification as ec
from weightspace.evaluate.methods import Method
from weightspace.nets import MLP


def separated(n_per_class: int = 30, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    centres = torch.eye(classes, 8) * 10.0
    return centres[y] + 0.1 * torch.randn(len(y), 8, generator=g), y


def test_well_separated_features_score_one():
    x, y = separated()
    acc, f1 = ec.kfold_logistic(x, y, folds=5, seed=0)
    assert acc == pytest.approx(1.0) and f1 == pytest.approx(1.0)


def test_random_features_score_near_chance_and_folds_shrink_to_the_smallest_class():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(200, 8, generator=g), torch.randint(0, 2, (200,), generator=g)
    acc, _ = ec.kfold_logistic(x, y)
    assert 0.3 < acc < 0.7
    x, y = separated(n_per_class=3, classes=2)
    assert ec.kfold_logistic(x, y, folds=5) == pytest.approx((1.0, 1.0))  # 3 folds: 3 examples of each class
    assert ec.kfold_logistic(x[:4], torch.tensor([0, 0, 0, 1])) is None  # one example of a class: no fold has it twice
    assert ec.kfold_logistic(x, torch.zeros(len(x), dtype=torch.long)) is None


def test_the_score_is_on_for_feature_architectures_only():
    mlp = MLP(input_shape=(4,), n_classes=2, hidden=(3,))
    assert not ec.enabled(mlp, "auto") and not ec.enabled(mlp, "off")
    with pytest.raises(WeightspaceError, match="do not expose"):
        ec.enabled(mlp, "on")
    with pytest.raises(WeightspaceError, match="is not one of auto, on, off"):
        ec.enabled(mlp, "yes")
    lora = SimpleNamespace(features_dim=384, name="lora-minilm")
    assert ec.enabled(lora, "auto") and ec.enabled(lora, "on") and not ec.enabled(lora, "off")


class LinearFeatures:
    """A stand-in feature architecture: features = x @ body.weight.T (the head is not read)."""

    features_dim, name = 8, "linear-features"

    def features(self, params, x):
        return x @ params["body.weight"].T


def test_scores_read_the_body_once_and_ignore_the_head(monkeypatch):
    x, y = separated(n_per_class=20, classes=2)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    task = SimpleNamespace(x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    ctx = SimpleNamespace(arch=LinearFeatures(), tasks=[task, task])
    monkeypatch.setattr(ec, "head_names", lambda arch: ("head.weight", "head.bias"))
    calls = []
    real = ec.task_features
    monkeypatch.setattr(ec, "task_features", lambda *a: calls.append(1) or real(*a))
    eye, zero = torch.eye(8), torch.zeros(8, 8)
    methods = []
    for key, body, head in (("a", eye, 0.0), ("a+head", eye, 1.0), ("zero", zero, 0.0)):
        m = Method(key, "generator", key, key)
        for _ in ctx.tasks:
            m.add({"body.weight": body, "head.weight": torch.full((2, 8), head), "head.bias": torch.zeros(2)}, 0.0)
        methods.append(m)
    scores = ec.embedding_scores(ctx, methods, folds=5, seed=0)
    assert len(calls) == 4  # two distinct bodies on each of two tasks
    assert scores["a"].accuracy == scores["a+head"].accuracy == [1.0, 1.0]
    assert scores["zero"].accuracy[0] < 0.75  # every embedding the same: the regression can only guess
    entries = {k: {"per_task": [{}, {}]} for k in scores}
    ec.attach(entries, scores)
    assert entries["a"]["mteb_accuracy_mean"] == 1.0 and entries["a"]["per_task"][1]["mteb_accuracy"] == 1.0
    assert "mteb_f1" in entries["zero"]["per_task"][0]
    summary = ec.overall(entries, folds=5)
    assert summary["ranking"][-1] == "zero" and summary["accuracy"]["a"] == 1.0 and "5-fold" in summary["protocol"]


def test_the_frozen_base_scores_what_logistic_regression_on_frozen_embeddings_scores():
    from text_stack import require_text_stack

    require_text_stack()
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_validate

    from weightspace.encode.text_conditions import frozen_embeddings
    from weightspace.evaluate.feature_baselines import frozen_weights
    from weightspace.nets.lora_minilm import LoRAMiniLM
    from weightspace.tasks.chatterbot import ChatterbotFamily

    torch.set_num_threads(1)
    arch = LoRAMiniLM(inputs="hidden")
    fam = ChatterbotFamily(inputs="hidden", max_per_class=24, support_per_class=4)
    task = fam.task(fam.heldout_task_ids()[0])
    frozen = frozen_weights(arch)
    method = Method("frozen", "fewshot", "frozen", "ΔW = 0")
    g = torch.Generator().manual_seed(0)
    method.add({**frozen, "head.weight": torch.randn(2, 384, generator=g), "head.bias": torch.zeros(2)}, 0.0)
    score = ec.embedding_scores(SimpleNamespace(arch=arch, tasks=[task]), [method], folds=5, seed=0)["frozen"]
    emb = torch.cat([frozen_embeddings(arch, task.x_train), frozen_embeddings(arch, task.x_test)]).double().numpy()
    y = torch.cat([task.y_train, task.y_test]).numpy()
    direct = cross_validate(LogisticRegression(max_iter=100, random_state=0), emb, y, scoring=("accuracy", "f1_macro"),
                            cv=StratifiedKFold(5, shuffle=True, random_state=0))
    assert score.accuracy[0] == pytest.approx(float(np.mean(direct["test_accuracy"])), abs=1e-9)
    assert score.f1_macro[0] == pytest.approx(float(np.mean(direct["test_f1_macro"])), abs=1e-9)
    assert 0.5 < score.accuracy[0] <= 1.0
