"""The multi-task network: one body, an output layer linear in the task's condition."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from weightspace.adapt.multitask import fit_multitask, head_names
from weightspace.errors import WeightspaceError
from weightspace.nets import make_arch
from weightspace.tasks import make_family


def accuracy(arch, weights, task) -> float:
    return float((functional_call(arch.module(), weights, (task.x_test,)).argmax(1) == task.y_test).float().mean())


def test_one_network_solves_several_subset_tasks_told_apart_by_their_condition():
    torch.manual_seed(0)
    family = make_family("digits-subsets", n_tasks=40, n_heldout=4)
    tasks = [family.task(t) for t in family.zoo_task_ids()[:6]]
    conds = torch.tensor([t.descriptor for t in tasks]) * 2 - 1
    arch = make_arch("mlp", input_shape=(1, 10, 10), n_classes=2, hidden=[16])
    net = fit_multitask(arch, tasks, conds, arch.init_params(0), steps=300, batch_tasks=6)
    for task, c in zip(tasks, conds):
        weights = net.weights_for(c)
        arch.spec().validate(weights)
        assert accuracy(arch, weights, task) > 0.85, task.task_id
    # The body is shared: only the output layer depends on the condition.
    a, b = net.weights_for(conds[0]), net.weights_for(conds[1])
    assert torch.equal(a["fc0.weight"], b["fc0.weight"]) and not torch.equal(a["fc1.weight"], b["fc1.weight"])


def test_head_names_are_the_output_layer():
    assert head_names(make_arch("mlp", input_shape=(1, 10, 10), n_classes=3, hidden=[8])) == ("fc1.weight", "fc1.bias")
    assert head_names(make_arch("cnn", input_shape=(1, 10, 10), n_classes=3)) == ("head.weight", "head.bias")


def test_one_condition_per_task():
    arch = make_arch("mlp", input_shape=(1, 10, 10), n_classes=2, hidden=[8])
    family = make_family("digits-subsets", n_tasks=4, n_heldout=1)
    with pytest.raises(WeightspaceError, match="one condition per zoo task"):
        fit_multitask(arch, [family.task(family.zoo_task_ids()[0])], torch.zeros(2, 10), arch.init_params(0), steps=1)
