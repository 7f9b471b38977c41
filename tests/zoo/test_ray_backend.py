"""Zoo building on Ray: the same pool contract as WorkerPool, and the same zoo as a local build.

One local Ray instance (2 CPUs) serves the whole module; it lives in a short temporary directory
(Ray's socket paths must stay under ~107 characters) that is removed afterwards, and the test
checks that Ray wrote nothing to ~/.ray or /tmp/ray.
"""

from __future__ import annotations

import os
import sys

import pytest
import ray
import torch
from ray_scratch import ray_scratch

from weightspace.cli import main
from weightspace.errors import WeightspaceError
from weightspace.nets import MLP
from weightspace.tasks import make_family
from weightspace.zoo.build import build_zoo
from weightspace.zoo.ray_backend import RayPool
from weightspace.zoo.store import Zoo
from weightspace.zoo.train import TrainConfig

CFG = TrainConfig(steps=20, batch_size=32, snapshot_every=10)


def threads_and_pid(n: int) -> tuple[int, int, int]:
    return n * n, torch.get_num_threads(), os.getpid()


def fail_on_three(n: int) -> int:
    if n == 3:
        raise ValueError("job three failed")
    return n


@pytest.fixture(scope="module")
def local_ray():
    with ray_scratch() as temp:
        # Ray workers cannot import this test module by name: ship its functions by value.
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()
            ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def family():
    return make_family("digits-rotate", n_tasks=4, n_heldout=1)


@pytest.fixture(scope="module")
def arch(family):
    return MLP(input_shape=family.input_shape, n_classes=family.n_classes, hidden=(8,))


def test_pool_runs_every_job_once_in_workers_with_one_thread(local_ray):
    pool = RayPool(max_in_flight=3)
    seen = []
    out = dict(pool.run(threads_and_pid, list(range(6)), progress=lambda done, total: seen.append((done, total))))
    assert {i: r[0] for i, r in out.items()} == {i: i * i for i in range(6)}
    assert {r[1] for r in out.values()} == {1}
    assert os.getpid() not in {r[2] for r in out.values()}
    assert seen == [(k, 6) for k in range(1, 7)]
    pool.close()
    assert ray.is_initialized(), "a pool must not shut down a Ray instance it did not start"


def test_a_failing_job_raises_its_own_exception(local_ray):
    with RayPool() as pool, pytest.raises(ValueError, match="job three"):
        list(pool.run(fail_on_three, [1, 2, 3, 4]))


def test_ray_build_gives_the_local_build(tmp_path, local_ray, family, arch):
    local = build_zoo(tmp_path / "local", family, arch, CFG, chunk_size=2, workers=0, include_heldout=True, progress=False)
    on_ray = build_zoo(tmp_path / "ray", family, arch, CFG, chunk_size=2, include_heldout=True, progress=False,
                       backend="ray")
    a, b = local.records(final_only=False, split=None), on_ray.records(final_only=False, split=None)
    assert [r.key for r in a] == [r.key for r in b] and len(a) == 2 * 5  # final + snapshot per member
    assert [r.member_id for r in a] == [r.member_id for r in b]  # stored in plan order
    for ra, rb in zip(a, b):
        assert ra.metrics.keys() == rb.metrics.keys()
        assert all(abs(ra.metrics[k] - rb.metrics[k]) < 1e-5 for k in ra.metrics)
    wa = local.load(final_only=False, split=None)
    wb = on_ray.load(final_only=False, split=None)
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    assert on_ray.check() == [] and on_ray.card["config"]["backend"] == "ray"
    # A rerun finds nothing to train and leaves the zoo as it was.
    again = build_zoo(tmp_path / "ray", family, arch, CFG, chunk_size=2, include_heldout=True, progress=False,
                      backend="ray")
    assert len(again.manifest.shards()) == len(on_ray.manifest.shards())


def test_cli_builds_on_ray(tmp_path, local_ray):
    out = tmp_path / "zoo"
    argv = ["zoo", "build", "--out", str(out), "--tasks", "2", "--heldout", "1", "--steps", "10", "--hidden", "8",
            "--chunk", "1", "--backend", "ray", "--quiet"]
    assert main(argv) == 0
    zoo = Zoo.open(out)
    assert len(zoo) == 2 and zoo.card["recipe"]["backend"] == "ray"


def test_backend_names_are_checked_before_anything_is_written(tmp_path, family, arch):
    with pytest.raises(WeightspaceError, match="backend must be one of local, ray"):
        build_zoo(tmp_path / "z", family, arch, CFG, backend="dask", progress=False)
    with pytest.raises(WeightspaceError, match="--backend ray"):
        build_zoo(tmp_path / "z", family, arch, CFG, address="auto", progress=False)
    assert not (tmp_path / "z").exists()
