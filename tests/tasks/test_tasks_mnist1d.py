"""mnist1d: procedural signals, generated locally, under a per-task phase shift."""

import random
import socket

import numpy as np
import pytest
import torch

from weightspace.tasks import make_family
from weightspace.tasks.mnist1d_family import MNIST1D, mnist1d_base

pytestmark = pytest.mark.realdata

CONFIG = {"n_tasks": 8, "n_heldout": 2, "seed": 7, "num_samples": 500}


@pytest.fixture(scope="module")
def family():
    return make_family("mnist1d", **CONFIG)


def test_builds_without_network_and_leaves_global_rngs_alone(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("mnist1d tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    # get_dataset downloads a pickle and swallows errors, so it is refused outright too
    monkeypatch.setattr("mnist1d.data.get_dataset", refuse)
    monkeypatch.setattr("requests.get", refuse)
    mnist1d_base.cache_clear()
    MNIST1D.cache.clear()
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    task = make_family("mnist1d", **{**CONFIG, "seed": 8}).task("phase=045.00")
    assert np.random.random() == expected_np and random.random() == expected_py
    assert task.x_train.shape == (400, 1, 40) and task.x_test.shape == (100, 1, 40)


def test_shapes_dtypes_and_fields(family):
    task = family.task("phase=090.00")
    assert task.input_shape == family.input_shape == (1, 40) and task.n_classes == 10
    assert task.x_train.dtype == torch.float32 and task.y_train.dtype == torch.int64
    assert set(task.y_train.tolist()) == set(range(10))
    assert task.descriptor == (90.0,) and "phase shifted by 90 degrees" in task.description
    assert torch.bincount(task.support_y).tolist() == [10] * 10


def test_tasks_share_samples_and_differ_by_phase(family):
    x_train, y_train, _, _ = mnist1d_base(7, 500)
    base, shifted = family.task("phase=000.00"), family.task("phase=180.00")
    np.testing.assert_allclose(base.x_train.numpy(), x_train, atol=1e-5)
    assert torch.equal(base.y_train, shifted.y_train)
    # the shift is orthogonal: every signal keeps its energy, but the waveform changes
    torch.testing.assert_close(shifted.x_train.norm(dim=-1), base.x_train.norm(dim=-1), rtol=1e-4, atol=1e-4)
    assert (shifted.x_train - base.x_train).abs().mean() > 0.5


def test_two_builds_are_equal_and_seed_matters(family):
    again = make_family("mnist1d", **CONFIG)
    tid = family.heldout_task_ids()[0]
    a, b = family._build(tid, family.angle_of(tid)), again.task(tid)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.support_x, b.support_x)
    other = mnist1d_base(9, 500)[0]
    assert not np.allclose(other, mnist1d_base(7, 500)[0])


def test_pretrain_task_mixes_phases(family):
    task = family.pretrain_task()
    assert task.x_train.shape == (4 * 400, 1, 40) and task.descriptor == ()
    assert not torch.allclose(task.x_test, family.task("phase=000.00").x_test)
