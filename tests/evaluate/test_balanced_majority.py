"""Balanced accuracy and the majority-class baseline: the floor an imbalanced subset task sets."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from weightspace.evaluate.scoring import balanced_accuracy
from weightspace.nets import make_arch


def test_balanced_accuracy_is_mean_per_class_recall():
    y = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    constant = torch.zeros(1, 10, dtype=torch.long)
    half = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1, 1, 0]])
    bal = balanced_accuracy(torch.cat([constant, half]), y, 2)
    assert bal.tolist() == pytest.approx([0.5, (4 / 8 + 1 / 2) / 2])


def test_balanced_accuracy_ignores_classes_absent_from_the_labels():
    y = torch.tensor([0, 2, 2])
    assert balanced_accuracy(torch.tensor([[0, 2, 1]]), y, 3).item() == pytest.approx(0.75)


@pytest.mark.parametrize("name, options", [("mlp", {"hidden": [8]}), ("cnn", {})])
def test_constant_params_predict_one_class_for_every_input(name, options):
    arch = make_arch(name, input_shape=(1, 10, 10), n_classes=3, **options)
    x = torch.randn(17, 1, 10, 10)
    for label in range(3):
        logits = functional_call(arch.module(), arch.constant_params(label), (x,))
        assert (logits.argmax(1) == label).all()
