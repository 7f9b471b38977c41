"""The few-shot objective: episodes, the prototype loss, and its refusal of architectures without
features. (A LoRA generator trained with it: tests/text/test_text_conditions.py.)"""

import pytest
import torch
from torch import nn

from weightspace.errors import WeightspaceError
from weightspace.generate import make_generator, zoo_data
from weightspace.generate.fewshot import COSINE_SCALE, episode, prototype_loss
from weightspace.generate.taskdata import TaskBank
from weightspace.nets import MLP

from gen_helpers import ARCH, make_task, tiny_zoo


def test_episode_sets_are_disjoint_balanced_and_from_the_members_task():
    tasks = [make_task(a, n_train=60, n_support=9) for a in (0.0, 30.0)]
    # label each input by its row so drawn examples can be traced back
    for t in tasks:
        t.x_train[:, 5] = torch.arange(len(t.y_train)).float()
    bank = TaskBank(tasks)
    members = torch.tensor([0, 1, 1])
    sx, sy, qx, qy = episode(bank, members, query=12, g=torch.Generator().manual_seed(0))
    assert sx.shape == (3, 9, 6) and qx.shape == (3, 12, 6)
    for b, m in enumerate(members.tolist()):
        s_rows, q_rows = sx[b, :, 5].long(), qx[b, :, 5].long()
        assert not set(s_rows.tolist()) & set(q_rows.tolist())
        assert torch.equal(tasks[m].y_train[s_rows], sy[b]) and torch.equal(tasks[m].y_train[q_rows], qy[b])
        assert torch.bincount(sy[b], minlength=3).tolist() == [3, 3, 3]
        assert torch.bincount(qy[b], minlength=3).tolist() == [4, 4, 4]


def test_episode_caps_the_query_and_refuses_tasks_too_small_for_one():
    bank = TaskBank([make_task(0.0, n_train=40, n_support=30)])
    _, _, qx, _ = episode(bank, torch.tensor([0]), query=100, g=torch.Generator().manual_seed(0))
    assert qx.shape[1] == 10  # 40 training examples - 30 in the support set
    with pytest.raises(WeightspaceError, match="query set"):
        episode(TaskBank([make_task(0.0, n_train=31, n_support=30)]), torch.tensor([0]), 5, torch.Generator())


ARCH_2 = MLP(input_shape=(2,), n_classes=2, hidden=(4,))  # only its n_classes and compact_inputs are read


class Identity(nn.Module):
    """Features = inputs x a per-member scale, so the loss can be computed by hand."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x, features=False):
        assert features
        return x * self.scale


def test_prototype_loss_is_the_cosine_prototype_classifiers_cross_entropy():
    sx = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]])
    sy = torch.tensor([[0, 0, 1]])
    qx = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])
    qy = torch.tensor([[0, 1]])
    loss = prototype_loss(ARCH_2, Identity(), {"scale": torch.ones(1)}, sx, sy, qx, qy)
    # prototypes (2, 0) and (0, 2): cosines of (1, 1) are (.707, .707), of (0, 1) are (0, 1)
    c = 2 ** -0.5
    logits = COSINE_SCALE * torch.tensor([[c, c], [0.0, 1.0]])
    assert torch.allclose(loss, nn.functional.cross_entropy(logits, qy[0]))
    # cosine: a member that scales its features by a positive factor has the same loss
    assert torch.allclose(prototype_loss(ARCH_2, Identity(), {"scale": torch.full((1,), 3.0)}, sx, sy, qx, qy), loss)


def test_fewshot_objective_refuses_an_architecture_without_features():
    params, tasks, _ = tiny_zoo()
    data = zoo_data.from_params(ARCH, params, tasks, "support-probe")
    with pytest.raises(WeightspaceError, match="features"):
        make_generator("hypernet", objective="fewshot", steps=2, warmup_steps=1).fit(data)


def test_the_training_report_names_the_refitted_head_figure_when_there_is_one():
    from weightspace.generate.evaluation import describe_heldout

    assert describe_heldout({}) == ""
    plain = describe_heldout({"generated_acc_mean": 0.9, "reference_acc_mean": 0.95})
    assert plain == "; held-out accuracy 0.900 vs trained 0.950"
    lora = describe_heldout({"generated_acc_mean": 0.5, "generated_head_acc_mean": 0.73, "reference_acc_mean": None})
    assert lora == "; held-out accuracy 0.500 (head refitted on the support set: 0.730)"
