"""digits-rotate: the embedded default family."""

import math

import numpy as np
import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.nets.mlp import MLP
from weightspace.tasks import make_family
from weightspace.tasks.digits import digits_base


@pytest.fixture(scope="module")
def family():
    return make_family("digits-rotate", n_tasks=16, n_heldout=4, seed=3)


def test_split_is_disjoint_recorded_and_sized(family):
    zoo, held = family.zoo_task_ids(), family.heldout_task_ids()
    assert len(zoo) == 16 and len(held) == 4 and not set(zoo) & set(held)
    record = family.to_dict()
    assert record["zoo_tasks"] == zoo and record["heldout_tasks"] == held
    assert record["config"] == {"n_tasks": 16, "n_heldout": 4, "seed": 3, "support_size": 100, "angle_range": 360.0}


def test_task_fields_shapes_and_dtypes(family):
    task = family.task("rot=045.00")
    assert task.family == "digits-rotate" and task.n_classes == 10 and task.metric == "accuracy"
    assert task.input_shape == family.input_shape == (1, 10, 10)
    assert task.x_train.dtype == torch.float32 and task.y_train.dtype == torch.int64
    assert len(task.x_train) + len(task.x_test) == 1797 and len(task.x_test) == 599
    assert 0.0 <= task.x_train.min() and task.x_train.max() <= 1.0
    assert task.descriptor == (45.0,) and "45 degrees" in task.description
    assert family.descriptor_features("rot=045.00") == pytest.approx((math.sqrt(0.5), math.sqrt(0.5)))


def test_tasks_differ_by_rotation_alone(family):
    x_train, y_train, _, _ = digits_base(3)
    upright, turned = family.task("rot=000.00"), family.task("rot=090.00")
    np.testing.assert_allclose(upright.x_train.numpy(), x_train, atol=1e-6)
    assert torch.equal(upright.y_train, turned.y_train)
    np.testing.assert_allclose(turned.x_train.numpy(), np.rot90(x_train, 1, axes=(-2, -1)), atol=1e-5)


def test_two_builds_are_equal():
    a = make_family("digits-rotate", n_tasks=8, n_heldout=2, seed=11)
    b = make_family("digits-rotate", n_tasks=8, n_heldout=2, seed=11)
    assert a.to_dict() == b.to_dict()
    ta, tb = a._build(a.heldout_task_ids()[0], a.angle_of(a.heldout_task_ids()[0])), b.task(b.heldout_task_ids()[0])
    for name in ("x_train", "y_train", "x_test", "y_test", "support_x", "support_y"):
        assert torch.equal(getattr(ta, name), getattr(tb, name)), name


def test_seed_changes_split_and_heldout_angles():
    a, b = make_family("digits-rotate", seed=0), make_family("digits-rotate", seed=1)
    assert a.heldout_task_ids() != b.heldout_task_ids()
    assert not torch.equal(a.task("rot=000.00").y_test, b.task("rot=000.00").y_test)


def test_support_set_is_stratified_subset_of_train(family):
    task = family.task(family.heldout_task_ids()[0])
    assert len(task.support_y) == 100 and torch.bincount(task.support_y).tolist() == [10] * 10
    small = make_family("digits-rotate", n_tasks=8, n_heldout=1, support_size=30).task("rot=000.00")
    assert len(small.support_y) == 30
    rows = {tuple(r) for r in task.x_train.flatten(1).tolist()}
    assert all(tuple(r) in rows for r in task.support_x.flatten(1).tolist())


def test_pretrain_task_uses_random_rotations(family):
    task = family.pretrain_task()
    assert task.input_shape == (1, 10, 10) and task.n_classes == 10 and task.descriptor == ()
    assert len(task.x_train) == 4 * 1198 and len(task.x_test) == 599
    upright = family.task("rot=000.00")
    assert not torch.allclose(task.x_test, upright.x_test)


@pytest.mark.parametrize("bad", ["rot=045", "rot=045.01", "angle=045.00", "", "rot=400.00"])
def test_bad_task_id_is_a_clear_error(family, bad):
    with pytest.raises(WeightspaceError, match="not a task of family digits-rotate"):
        family.task(bad)


@pytest.mark.parametrize("config, words", [({"support_size": 500}, "support_size"), ({"n_tasks": 0}, "n_tasks")])
def test_bad_config_is_a_clear_error(config, words):
    with pytest.raises(WeightspaceError, match=words):
        make_family("digits-rotate", **config)


def test_default_mlp_learns_the_worst_angle():
    """45 degrees crops the most; with the 10x10 padding the default recipe still gets ~0.96."""
    torch.set_num_threads(1)
    task = make_family("digits-rotate", n_tasks=8, n_heldout=1).task("rot=045.00")
    arch = MLP(task.input_shape, 10, (32,))
    model = arch.module()
    model.load_state_dict(arch.init_params(0))
    opt, gen = torch.optim.Adam(model.parameters(), lr=3e-3), torch.Generator().manual_seed(0)
    for _ in range(1000):
        i = torch.randint(0, len(task.y_train), (64,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(task.x_train[i]), task.y_train[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        accuracy = (model(task.x_test).argmax(1) == task.y_test).float().mean().item()
    assert accuracy >= 0.94  # measured 0.95-0.97 across seeds; the zoo acceptance bar is a 0.95 mean
