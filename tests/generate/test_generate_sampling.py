import pytest
import torch
from gen_helpers import ARCH, make_task, tiny_zoo

from weightspace import WeightspaceError
from weightspace.generate import generate_weights, make_generator, zoo_data
from weightspace.generate.conditions import ConditionSource
from weightspace.generate.taskdata import TaskBank

_GEN: dict = {}


def generator():
    if not _GEN:
        params, tasks, _ = tiny_zoo()
        d = zoo_data.from_params(ARCH, params, tasks, "support-probe", condition_options={"n_anchors": 6})
        _GEN["g"] = make_generator("pca-gaussian", noise_scale=2.0).fit(d)
    return _GEN["g"]


def test_best_of_n_keeps_the_lowest_support_losses():
    task = tiny_zoo()[2][0]
    out = generate_weights(generator(), task, n=3, seed=0, best_of=4)
    assert out.candidates == 12 and out.passed >= 3
    assert out.params["fc0.weight"].shape[0] == 3
    assert torch.all(out.support_loss[:-1] <= out.support_loss[1:])
    single = generate_weights(generator(), task, n=1, seed=0, best_of=1)
    assert float(out.support_loss[0]) <= float(single.support_loss[0]) + 1e-6  # the first candidate was in the pool


def test_raw_support_sets_work_and_are_validated():
    task = tiny_zoo()[2][1]
    out = generate_weights(generator(), (task.support_x.numpy(), task.support_y.tolist()), n=2, seed=1)
    assert out.support_accuracy.min() > 0.5
    with pytest.raises(WeightspaceError, match="labels must lie"):
        generate_weights(generator(), (task.support_x, task.support_y + 3))


def test_nothing_passing_is_a_clear_error():
    task = tiny_zoo()[2][0]
    # one label only: the constant guess is perfect, so no network can beat it
    y = torch.zeros_like(task.support_y)
    with pytest.raises(WeightspaceError, match="beat the constant guess"):
        generate_weights(generator(), (task.support_x, y), n=1)


def test_task_bank_draws_balanced_support_sets_from_training_data():
    tasks = [make_task(a) for a in (0.0, 30.0)]
    bank = TaskBank(tasks + [tasks[0]])
    assert bank.member_task.tolist() == [0, 1, 0] and bank.support_size == 30
    g = torch.Generator().manual_seed(0)
    x, y = bank.support(torch.tensor([0, 1, 2]), g)
    assert x.shape == (3, 30, 6)
    for row in range(3):
        counts = torch.bincount(y[row], minlength=3)
        assert int(counts.max() - counts.min()) <= 1
        assert len({tuple(v.tolist()) for v in x[row]}) == 30  # drawn without replacement
    source = tasks[1]  # every drawn pair is a real (x, y) pair of the member's task
    match = (x[1][:, None, :] == source.x_train[None]).all(-1)
    assert torch.equal(source.y_train[match.float().argmax(1)], y[1])
    assert not torch.equal(x[0], x[2])  # fresh draws differ


def test_condition_source_modes():
    params, tasks, _ = tiny_zoo()
    probe = zoo_data.from_params(ARCH, params, tasks, "support-probe", condition_options={"n_anchors": 4})
    g = torch.Generator().manual_seed(0)
    bank = ConditionSource(probe, resample=True, draws=3)
    assert bank.mode == "bank" and bank.bank.shape == (4, 16, 4)
    assert torch.equal(bank.bank[0], probe.conditions)
    assert bank(torch.arange(5), g).shape == (5, 4)
    members, conds = bank.all_draws()
    assert len(members) == 64 and torch.equal(conds[16 + 3], bank.bank[1, 3])
    assert ConditionSource(probe, resample=False).mode == "fixed"
    desc = zoo_data.from_params(ARCH, params, tasks, "descriptor")
    assert ConditionSource(desc).mode == "fixed"
    deep = zoo_data.from_params(ARCH, params, tasks, "support-deepsets", condition_options={"dim": 4, "hidden": 8})
    live = ConditionSource(deep)
    assert live.mode == "live" and live(torch.arange(2), g).requires_grad


def test_support_files_in_every_format_read_back_equal(tmp_path):
    import json

    import numpy as np

    from weightspace.generate.support_file import read_support_file
    from weightspace.io import save_safetensors

    task = make_task(10.0)
    x, y = task.support_x, task.support_y
    np.savez(tmp_path / "s.npz", x=x.numpy(), y=y.numpy())
    save_safetensors(tmp_path / "s.safetensors", {"x": x, "y": y})
    (tmp_path / "s.json").write_text(json.dumps({"x": x.tolist(), "y": y.tolist()}))
    for name in ("s.npz", "s.safetensors", "s.json"):
        xs, ys = read_support_file(tmp_path / name, (6,), 3)
        assert torch.allclose(xs, x) and torch.equal(ys, y)
    (tmp_path / "s.csv").write_text("1,2")
    with pytest.raises(WeightspaceError, match="unknown format"):
        read_support_file(tmp_path / "s.csv", (6,), 3)
    np.savez(tmp_path / "nolabels.npz", x=x.numpy())
    with pytest.raises(WeightspaceError, match="lacks y"):
        read_support_file(tmp_path / "nolabels.npz", (6,), 3)
