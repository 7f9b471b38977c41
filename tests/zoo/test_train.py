"""Batched zoo training equals training each member alone, for every supported setting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from weightspace.errors import WeightspaceError
from weightspace.nets import CNN, MLP, load_module
from weightspace.tasks.base import Task
from weightspace.zoo.recipe import BatchStream, cross_entropy
from weightspace.zoo.sequential import evaluate_module
from weightspace.zoo.train import TrainConfig, _RowPool, evaluate_members, train_members, train_single

ATOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: a second torch thread only adds synchronisation on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

CFG = TrainConfig(steps=20, batch_size=16, lr=1e-2)


def make_task(i: int, input_shape, n_train: int = 60, n_test: int = 25, classes: int = 3, x_train=None) -> Task:
    g = torch.Generator().manual_seed(1000 + i)
    x = torch.randn(n_train, *input_shape, generator=g) if x_train is None else x_train
    y = torch.randint(0, classes, (len(x),), generator=g)
    x_test = torch.randn(n_test, *input_shape, generator=g)
    y_test = torch.randint(0, classes, (n_test,), generator=g)
    return Task(f"t{i}", "synthetic", (float(i),), f"synthetic task {i}", x, y, x_test, y_test, x[:6], y[:6], classes)


def assert_matches_single(arch, tasks, seeds, cfg, init=None):
    result = train_members(arch, tasks, seeds, cfg, init=init)
    assert len(result.metrics) == len(tasks)
    for i, (task, seed) in enumerate(zip(tasks, seeds)):
        alone, metrics = train_single(arch, task, seed, cfg, init=init)
        for name in arch.spec().names:
            torch.testing.assert_close(result.final[name][i], alone[name], atol=ATOL, rtol=0)
        for key, value in metrics.items():
            assert result.metrics[i][key] == pytest.approx(value, abs=1e-5), key
    return result


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu"])
def test_mlp_members_equal_training_alone_with_different_train_sizes(act):
    arch = MLP((5,), 3, (8, 6), act)
    tasks = [make_task(i, (5,), n_train=n) for i, n in enumerate((60, 37, 10))]  # 10 < batch: wraps epochs
    result = assert_matches_single(arch, tasks, [3, 4, 5], CFG)
    start = arch.init_params_stacked([3, 4, 5])
    assert all(not torch.equal(result.final[n], start[n]) for n in start)  # training moved every tensor


@pytest.mark.parametrize("input_shape", [(2, 12), (1, 6, 6)], ids=["1d", "2d"])
@pytest.mark.parametrize("groups", [0, 2], ids=["plain", "groupnorm"])
def test_cnn_members_equal_training_alone(input_shape, groups):
    arch = CNN(input_shape, 3, (4, 6), groupnorm_groups=groups)
    tasks = [make_task(i, input_shape, n_train=40) for i in range(2)]
    assert_matches_single(arch, tasks, [0, 1], TrainConfig(steps=12, batch_size=8))


@pytest.mark.parametrize("cfg", [
    TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, steps=20, batch_size=16),
    TrainConfig(optimizer="sgd", lr=0.05, momentum=0.0, steps=20, batch_size=16),
    TrainConfig(optimizer="adam", lr=1e-2, weight_decay=0.1, steps=20, batch_size=16, init_scheme="kaiming"),
], ids=["sgd-momentum-wd", "sgd-plain", "adamw-kaiming"])
def test_optimizers_are_per_member(cfg):
    arch = MLP((4,), 3, (7,))
    assert_matches_single(arch, [make_task(i, (4,)) for i in range(3)], [7, 8, 9], cfg)


def test_a_member_does_not_depend_on_its_chunk():
    arch = MLP((4,), 3, (6,))
    tasks = [make_task(i, (4,)) for i in range(4)]
    together = train_members(arch, tasks, [0, 1, 2, 3], CFG)
    alone = train_members(arch, tasks[2:3], [2], CFG)
    for name, value in alone.final.items():
        torch.testing.assert_close(together.final[name][2], value[0], atol=ATOL, rtol=0)


def test_shared_start_is_used_by_every_member():
    arch = MLP((4,), 3, (6,))
    shared = arch.init_params(123)
    tasks = [make_task(i, (4,)) for i in range(3)]
    untrained = train_members(arch, tasks, [0, 1, 2], TrainConfig(steps=0), init=shared)
    for name, value in shared.items():
        assert torch.equal(untrained.final[name], value.expand(3, *value.shape))
    result = assert_matches_single(arch, tasks, [0, 1, 2], CFG, init=shared)
    w = result.final["fc0.weight"]
    assert not torch.allclose(w[0], w[1])  # same start, different data order and task


def test_snapshots_every_k_steps_and_at_the_end():
    arch = MLP((4,), 3, (5,))
    tasks = [make_task(i, (4,)) for i in range(2)]
    result = train_members(arch, tasks, [0, 1], TrainConfig(steps=20, batch_size=16, snapshot_every=7))
    assert [step for step, _ in result.snapshots] == [7, 14, 20]
    for name, value in result.final.items():
        assert torch.equal(result.snapshots[-1][1][name], value)
        assert not torch.equal(result.snapshots[0][1][name], value)
    exact = train_members(arch, tasks, [0, 1], TrainConfig(steps=20, batch_size=16, snapshot_every=5))
    assert [step for step, _ in exact.snapshots] == [5, 10, 15, 20]
    # a snapshot equals the final weights of a shorter run (same data stream)
    short = train_members(arch, tasks, [0, 1], TrainConfig(steps=14, batch_size=16))
    for name, value in short.final.items():
        torch.testing.assert_close(result.snapshots[1][1][name], value, atol=0, rtol=0)
    none = train_members(arch, tasks, [0, 1], TrainConfig(steps=5, batch_size=16))
    assert none.snapshots == []


def test_tasks_sharing_inputs_are_gathered_without_copies():
    shared_x = torch.randn(50, 4)
    tasks = [make_task(i, (4,), x_train=shared_x) for i in range(3)]  # labels differ, inputs shared
    assert len({id(t.x_train) for t in tasks}) == 1 and not torch.equal(tasks[0].y_train, tasks[1].y_train)
    pool = _RowPool([t.x_train for t in tasks])
    assert pool.data.data_ptr() == shared_x.data_ptr()
    assert_matches_single(MLP((4,), 3, (6,)), tasks, [0, 1, 2], CFG)


def test_row_pool_addresses_each_members_own_rows():
    a, b = torch.arange(5.0).unsqueeze(1), torch.arange(100.0, 103.0).unsqueeze(1)
    pool = _RowPool([a, b, a])
    rows = pool.rows(torch.tensor([[4, 0], [2, 1], [3, 3]]))
    assert rows.squeeze(-1).tolist() == [[4.0, 0.0], [102.0, 101.0], [3.0, 3.0]]
    assert len(pool.data) == 8  # a is stored once


def test_batch_stream_is_epochs_of_permutations_cut_in_blocks():
    whole = BatchStream(10, 4, seed=3).take(5).reshape(-1)
    parts = BatchStream(10, 4, seed=3)
    assert torch.equal(torch.cat([parts.take(2), parts.take(3)]).reshape(-1), whole)
    assert sorted(whole[:10].tolist()) == list(range(10))  # epoch 1: every row once
    assert sorted(whole[10:20].tolist()) == list(range(10))  # epoch 2, wrapped across a batch
    assert not torch.equal(whole[:10], whole[10:20])
    assert not torch.equal(whole, BatchStream(10, 4, seed=4).take(5).reshape(-1))
    assert BatchStream(3, 8, seed=0).take(2).shape == (2, 8)  # fewer rows than a batch


def test_cross_entropy_matches_torch_even_for_extreme_logits():
    logits = torch.randn(6, 10) * torch.tensor([1.0, 1.0, 50.0, 200.0, 1e3, 0.1]).unsqueeze(1)
    target = torch.tensor([0, 3, 9, 1, 2, 5])
    logits.requires_grad_(True)
    ours = cross_entropy(logits, target)
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    ref = F.cross_entropy(logits, target, reduction="none")
    (g_ref,) = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-6, atol=1e-7)


def test_evaluate_members_shared_and_per_member_inputs_agree_with_modules():
    arch = CNN((1, 5, 5), 4, (3,))
    params = arch.init_params_stacked([0, 1, 2])
    x, y = torch.randn(23, 1, 5, 5), torch.randint(0, 4, (23,))
    acc, loss = evaluate_members(arch, params, x, y, batch=7)
    acc_per, loss_per = evaluate_members(arch, params, x.expand(3, *x.shape), y.expand(3, -1), batch=100)
    torch.testing.assert_close(acc, acc_per)
    torch.testing.assert_close(loss, loss_per)
    for i in range(3):
        module = load_module(arch, {n: t[i] for n, t in params.items()})
        ref_acc, ref_loss = evaluate_module(module, x, y)
        assert acc[i].item() == pytest.approx(ref_acc) and loss[i].item() == pytest.approx(ref_loss, rel=1e-5)
    with pytest.raises(WeightspaceError, match="evaluation inputs"):
        evaluate_members(arch, params, torch.randn(23, 5, 5), y)


def test_bad_input_is_one_clear_error():
    arch = MLP((4,), 3, (5,))
    task = make_task(0, (4,))
    with pytest.raises(WeightspaceError, match="one seed per task"):
        train_members(arch, [task, task], [0], CFG)
    with pytest.raises(WeightspaceError, match="expects"):
        train_members(arch, [make_task(1, (5,))], [0], CFG)
    with pytest.raises(WeightspaceError, match="optimizer"):
        train_single(arch, task, 0, TrainConfig(optimizer="lbfgs"))
    with pytest.raises(WeightspaceError, match="seed"):
        train_members(arch, [task], [-1], CFG)
    with pytest.raises(WeightspaceError, match="labels outside"):
        train_members(MLP((4,), 2, (5,)), [task], [0], CFG)
    with pytest.raises(WeightspaceError, match="shared initial weights"):
        train_members(arch, [task], [0], CFG, init={"fc0.weight": torch.zeros(5, 4)})


def test_config_values_of_the_wrong_type_are_named():
    with pytest.raises(WeightspaceError, match="lr='1e-2'"):
        train_single(MLP((4,), 3, (5,)), make_task(0, (4,)), 0, TrainConfig(lr="1e-2"))
