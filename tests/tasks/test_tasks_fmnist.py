"""Fashion-MNIST families: IDX parsing, the missing-data message, rotate and subset tasks.

Most tests run on small IDX files written here in the real format, so they need no installed
data; the ones marked ``realdata`` read the Debian package's files.
"""

import gzip
import itertools
import struct

import numpy as np
import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.tasks import fmnist, make_family

from optional_data import requires_fmnist


def write_idx(path, array):
    dims = array.shape
    header = struct.pack(">I", 0x800 + len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def clear_caches():
    fmnist.fmnist_base.cache_clear()
    fmnist.FMNISTRotate.cache.clear()
    fmnist.FMNISTSubsets.cache.clear()


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    """30 training and 20 test images per class; pixel (0, 0) holds the class so labels can be checked."""
    rng = np.random.default_rng(0)
    for split, per in (("train", 30), ("t10k", 20)):
        labels = np.repeat(np.arange(10), per)
        rng.shuffle(labels)
        images = rng.integers(0, 256, size=(len(labels), 28, 28))
        images[:, 0, 0] = labels * 20
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels)
    monkeypatch.setattr(fmnist, "FASHION_MNIST_DIR", tmp_path)
    clear_caches()
    yield tmp_path
    clear_caches()


def true_class(x):
    return torch.round(x[:, 0, 0, 0] * 255 / 20).long()


def test_missing_data_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(fmnist, "FASHION_MNIST_DIR", tmp_path / "absent")
    clear_caches()
    family = make_family("fmnist-rotate", n_tasks=4, n_heldout=1)
    message = (
        "Fashion-MNIST is not installed; install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)."
    )
    with pytest.raises(WeightspaceError) as err:
        family.task("rot=000.00")
    assert str(err.value) == message


@pytest.mark.parametrize("content", [b"not gzip", gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")])
def test_corrupt_idx_is_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.gz"
    path.write_bytes(content)
    with pytest.raises(WeightspaceError, match="reinstall dataset-fashion-mnist"):
        fmnist.read_idx(path, 1)


def test_subsample_is_balanced_and_checked(fake_data):
    x_train, y_train, x_test, y_test = fmnist.fmnist_base(100, 50, 0, fake_data)
    assert x_train.shape == (100, 1, 28, 28) and x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert torch.bincount(y_train).tolist() == [10] * 10 and torch.bincount(y_test).tolist() == [5] * 10
    assert torch.equal(true_class(x_train), y_train) and 0 <= x_train.min() and x_train.max() <= 1
    with pytest.raises(WeightspaceError, match="multiple of 10"):
        fmnist.fmnist_base(105, 50, 0, fake_data)


def test_rotate_tasks(fake_data):
    family = make_family("fmnist-rotate", n_tasks=8, n_heldout=2, n_train=100, n_test=50)
    upright, turned = family.task("rot=000.00"), family.task("rot=090.00")
    assert upright.input_shape == (1, 28, 28) and upright.n_classes == 10
    np.testing.assert_allclose(turned.x_test.numpy(), np.rot90(upright.x_test.numpy(), 1, axes=(-2, -1)), atol=1e-5)
    assert torch.equal(upright.y_train, turned.y_train)
    assert torch.bincount(turned.support_y).tolist() == [10] * 10
    assert family.descriptor_features("rot=090.00") == pytest.approx((0.0, 1.0), abs=1e-12)
    assert len(family.pretrain_task().x_train) == 400


def test_binary_split_counts_and_keeps_complements_of_heldout_out_of_the_zoo():
    family = make_family("fmnist-subsets", n_tasks=900, n_heldout=61, seed=2, heldout_distance=1)
    zoo = {family.subset_of(t) for t in family.zoo_task_ids()}
    held = {family.subset_of(t) for t in family.heldout_task_ids()}
    assert len(zoo) == 900 and len(held) == 61 and not zoo & held
    assert not {tuple(c for c in range(10) if c not in s) for s in held} & zoo
    assert fmnist.FMNISTSubsets.PRETRAIN_SUBSET not in held
    assert all(0 < len(s) < 10 for s in zoo | held)
    with pytest.raises(WeightspaceError, match="leaves 900 zoo subsets; choose n_tasks <= 900"):
        make_family("fmnist-subsets", n_tasks=901, n_heldout=61, heldout_distance=1)


def test_binary_tasks_share_images_and_label_by_membership(fake_data):
    family = make_family("fmnist-subsets", n_tasks=20, n_heldout=4, n_train=100, n_test=50, support_size=20)
    tasks = [family.task(t) for t in family.zoo_task_ids()[:3] + family.heldout_task_ids()[:1]]
    for task in tasks:
        subset = family.subset_of(task.task_id)
        assert task.x_train is tasks[0].x_train and task.x_test is tasks[0].x_test
        assert torch.equal(task.y_train, torch.isin(true_class(task.x_train), torch.tensor(subset)).long())
        assert task.n_classes == 2 and task.descriptor == tuple(float(c in subset) for c in range(10))
        assert sorted(torch.bincount(task.support_y, minlength=2).tolist()) == [10, 10]  # stratified even if |S| = 1
        assert task.task_id == "subset=" + "-".join(map(str, subset)) and task.description.startswith("Fashion-MNIST: is")


def test_kway_tasks_relabel_in_class_order(fake_data):
    family = make_family("fmnist-subsets", mode="kway", k=3, n_tasks=100, n_heldout=20, n_train=100, n_test=50)
    assert len(set(family.zoo_task_ids()) | set(family.heldout_task_ids())) == 120
    task = family.task(family.heldout_task_ids()[0])
    subset = family.subset_of(task.task_id)
    assert task.n_classes == 3 and len(task.x_train) == 30 and len(task.x_test) == 15
    assert torch.equal(torch.tensor(subset)[task.y_train], true_class(task.x_train))
    pretrain = family.pretrain_task()
    assert pretrain.n_classes == 3 and set(pretrain.y_train.tolist()) == {0, 1, 2} and len(pretrain.y_train) == 100


@pytest.mark.parametrize(
    "config, words",
    [
        ({"mode": "triplet"}, "binary or kway"),
        ({"mode": "kway", "k": 10}, "k between 2 and 9"),
        ({"mode": "kway", "n_tasks": 100}, "only 120 tasks"),
    ],
)
def test_bad_subset_configs(config, words):
    with pytest.raises(WeightspaceError, match=words):
        make_family("fmnist-subsets", **config)


def test_bad_subset_task_id():
    family = make_family("fmnist-subsets", n_tasks=10, n_heldout=2)
    every = ("subset=" + "-".join(map(str, s)) for n in range(1, 10) for s in itertools.combinations(range(10), n))
    # a subset too near a held-out one for any zoo (or generator training) task
    unused = next(t for t in every if t not in family.training_task_ids() + family.heldout_task_ids())
    for bad in (unused, "subset=3-1", "rot=000.00"):
        with pytest.raises(WeightspaceError, match="not a task of family fmnist-subsets"):
            family.task(bad)


@pytest.mark.realdata
@requires_fmnist
def test_real_fashion_mnist_loads():
    clear_caches()
    family = make_family("fmnist-subsets", n_train=200, n_test=100)
    task = family.task(family.zoo_task_ids()[0])
    assert task.x_train.shape == (200, 1, 28, 28) and task.x_test.shape == (100, 1, 28, 28)
    assert task.x_train.dtype == torch.float32 and 0 <= task.x_train.min() and task.x_train.max() == 1.0
    assert torch.bincount(family.pretrain_task().y_train).tolist() == [100, 100]
    rotated = make_family("fmnist-rotate", n_train=200, n_test=100).task("rot=001.41")
    assert rotated.x_train.shape == (200, 1, 28, 28) and rotated.input_shape == (1, 28, 28)
    clear_caches()
