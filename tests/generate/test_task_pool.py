"""hypernet task_pool=family: trained through the task loss on every allowed subset, zoo or not,
never on a held-out one; and the task bank shares one image tensor across relabelled tasks."""

import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.generate import make_generator, zoo_data
from weightspace.generate.hypernet import family_pool
from weightspace.generate.taskdata import TaskBank
from weightspace.nets import MLP
from weightspace.tasks import make_family
from weightspace.tasks.subsets import flip_distance, mask_of
from weightspace.zoo.build import build_zoo
from weightspace.zoo.recipe import TrainConfig


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    family = make_family("digits-subsets", n_tasks=6, n_heldout=4)
    arch = MLP(input_shape=(1, 10, 10), n_classes=2, hidden=(8,))
    path = tmp_path_factory.mktemp("pool") / "zoo"
    return build_zoo(path, family, arch, TrainConfig(steps=40), init="shared", pretrain_steps=20, workers=0, progress=False)


def test_family_pool_holds_every_allowed_subset_and_no_heldout_one(zoo):
    data = zoo_data.from_zoo(zoo, condition="support")
    pool = family_pool(data)
    family = make_family("digits-subsets", n_tasks=6, n_heldout=4)
    ids = [t.task_id for t in pool.tasks]
    assert set(family.zoo_task_ids()) < set(ids) and not set(ids) & set(family.heldout_task_ids())
    held = [mask_of(family.subset_of(h)) for h in family.heldout_task_ids()]
    assert all(flip_distance(mask_of(family.subset_of(t)), h) >= 2 for t in ids for h in held)
    assert pool.conditions.shape == (len(ids), data.conditions.shape[1])
    bank = TaskBank(pool.tasks)
    assert bank.shared_x and len(bank.x) == 1  # one image tensor for hundreds of relabelled tasks
    x, y = bank.minibatch(torch.arange(3), 5, torch.Generator().manual_seed(0))
    assert x.shape == (3, 5, 1, 10, 10) and y.shape == (3, 5)


def test_pool_size_keeps_the_zoo_tasks_and_a_seeded_sample(zoo):
    data = zoo_data.from_zoo(zoo, condition="support")
    every = [t.task_id for t in family_pool(data).tasks]
    ids = [t.task_id for t in family_pool(data, size=20, seed=3).tasks]
    assert len(ids) == 20 and set(ids) <= set(every) and {t.task_id for t in data.tasks} <= set(ids)
    assert ids == [t.task_id for t in family_pool(data, size=20, seed=3).tasks]
    assert ids != [t.task_id for t in family_pool(data, size=20, seed=4).tasks]


def test_unshared_bank_draws_each_members_own_rows():
    family = make_family("digits-rotate", n_tasks=4, n_heldout=1)
    tasks = [family.task(t) for t in family.zoo_task_ids()[:3]]
    bank = TaskBank(tasks)
    assert not bank.shared_x and len(bank.x) == 3
    x, y = bank.minibatch(torch.tensor([2, 0]), 6, torch.Generator().manual_seed(0))
    for row, task in zip(range(2), (tasks[2], tasks[0])):
        for xi, yi in zip(x[row], y[row]):
            hit = (task.x_train == xi).flatten(1).all(1)
            assert hit.any() and int(task.y_train[hit][0]) == int(yi)


def test_shared_bank_draws_match_the_tasks_own_examples(zoo):
    family = make_family("digits-subsets", n_tasks=6, n_heldout=4)
    tasks = [family.task(t) for t in family.zoo_task_ids()[:3]]
    bank = TaskBank(tasks)
    x, y = bank.support(torch.arange(3), torch.Generator().manual_seed(1))
    for i, t in enumerate(tasks):  # each drawn (image, label) pair is one of the task's own
        rows = (t.x_train.flatten(1)[None] == x[i].flatten(1)[:, None]).all(-1)
        assert rows.any(1).all()
        labels = [set(t.y_train[r].tolist()) for r in rows]
        assert all(int(y[i, j]) in labels[j] for j in range(len(labels)))


def test_hypernet_trains_on_the_pool(zoo):
    data = zoo_data.from_zoo(zoo, condition="support")
    gen = make_generator("hypernet", output="full", warmup_steps=0, steps=5, task_pool="family", batch_tasks=4,
                         support_draws=1, hidden=16, depth=1).fit(data)
    assert gen.fit_info["training_tasks"] > len(data)
    with pytest.raises(WeightspaceError, match="warmup_steps=0"):
        make_generator("hypernet", task_pool="family", steps=2, warmup_steps=2).fit(data)


def test_pool_family_options_may_widen_the_pool_but_not_move_the_split(zoo, monkeypatch):
    data = zoo_data.from_zoo(zoo, condition="support")
    with pytest.raises(WeightspaceError, match="does not reproduce"):
        family_pool(data, options={"n_heldout": 3})  # another split: refused, never silently re-paired
    with pytest.raises(WeightspaceError, match="mapping"):
        family_pool(data, options=[("n_heldout", 3)])
    with pytest.raises(WeightspaceError, match="task_pool=family"):
        make_generator("hypernet", steps=2, pool_family={"n_tasks": 6}).fit(data)
    # Auxiliary tasks (wordnet's concepts) join the pool, all of them, beside the pool_size sample.
    from weightspace.tasks.digits import DigitsSubsets

    extra = [t for t in make_family("digits-subsets", n_tasks=6, n_heldout=4).training_task_ids()
             if t not in {t.task_id for t in data.tasks}][:2]
    monkeypatch.setattr(DigitsSubsets, "auxiliary_task_ids", lambda self: extra)
    ids = [t.task_id for t in family_pool(data, size=len(data.tasks), seed=0).tasks]
    assert ids[-2:] == extra and len(ids) == len(data.tasks) + 2
