"""Evaluation with fine-tuning spread over workers: chunks of tasks, local processes, Ray.

Splitting the held-out tasks into chunks must not change what fine-tuning does to any task: the
chunks replay each task's minibatches (seeded by its global index) at the run's batch size, so
they agree with one batched run up to float rounding. Measured on digits-rotate MLPs: after 300
steps the weights differ by at most 2.5e-5 (SGD) and 7e-7 (AdamW), and no test prediction
changed; after the 20-40 steps used here the difference is ~1e-7. Accuracy is compared to one
test example.

The Ray test lets ``evaluate`` start (and stop) its own local Ray instance, as ``weightspace
eval --backend ray`` does without --address; Ray's files go to a short temporary directory
that is removed afterwards, and the test checks Ray wrote nothing to ~/.ray or /tmp/ray.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from ray_scratch import ray_scratch

from weightspace.adapt.finetune import FinetuneConfig, finetune
from weightspace.errors import WeightspaceError
from weightspace.evaluate.distributed import FinetuneJob, finetune_tasks
from weightspace.evaluate.harness import EvalConfig, evaluate
from weightspace.nets import MLP
from weightspace.zoo.workers import WorkerPool

WEIGHT_TOL = {"rtol": 1e-4, "atol": 1e-5}
RAY_HOME_DIRS = (Path.home() / ".ray", Path("/tmp/ray"))
SMALL = {"finetune_steps": (0, 5), "budget": 20, "eval_every": 5, "generator_modes": ("central",),
         "finetune_from": "central", "noise_sigmas": (0.1,), "average_k": 4}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads per process on a small shared CPU is many times slower
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A digits-rotate zoo (6 tasks, 3 held out), its family, and a fitted pca-gaussian generator."""
    from weightspace.generate import make_generator, zoo_data
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.recipe import TrainConfig

    root = tmp_path_factory.mktemp("evald")
    family = make_family("digits-rotate", n_tasks=6, n_heldout=3)
    arch = MLP(input_shape=(1, 10, 10), n_classes=10, hidden=(8,))
    zoo = build_zoo(root / "zoo", family, arch, TrainConfig(steps=40), workers=0, progress=False)
    gen = make_generator("pca-gaussian", support_draws=2).fit(zoo_data.from_zoo(zoo, condition="support", align=True))
    gen.save(root / "gen")
    return {"root": root, "family": family, "arch": arch}


@pytest.fixture(scope="module")
def in_process(tiny):
    return evaluate([tiny["root"] / "gen"], tiny["root"] / "zoo", EvalConfig(**SMALL))


def blobs(seed: int, n: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.randn(n, 4, generator=g) + y[:, None].float(), y


def same_accuracy(a: dict, b: dict, n_test: int) -> None:
    """acc_mean of every method equal, allowing one flipped test prediction per task."""
    assert a.keys() == b.keys()
    for key in a:
        assert a[key]["acc_mean"] == pytest.approx(b[key]["acc_mean"], abs=1.0 / n_test), key


def test_chunks_with_their_global_indices_replay_the_batched_run():
    arch = MLP(input_shape=(4,), n_classes=3, hidden=(16,))
    sizes = (40, 64, 100, 70)  # the smallest set caps the batch of the whole run, so every chunk passes it on
    data = [blobs(i, n) for i, n in enumerate(sizes)]
    test = [blobs(10 + i, 50) for i in range(len(sizes))]
    init = {n: torch.stack([arch.init_params(i)[n] for i in range(len(sizes))]) for n in arch.spec().names}
    for cfg in (FinetuneConfig(batch_size=48), FinetuneConfig(optimizer="sgd", lr=0.05, batch_size=48)):
        args = {"eval_every": 10, "keep": [0, 15, 40], "seed": 7}
        whole = finetune(arch, init, *zip(*data), cfg, 40, test=tuple(zip(*test)), **args)
        chunked = [finetune(arch, {n: v[a:b] for n, v in init.items()}, *zip(*data[a:b]), replace(cfg, batch_size=40), 40,
                            test=tuple(zip(*test[a:b])), task_indices=range(a, b), **args) for a, b in ((0, 1), (1, 4))]
        assert whole.examples_per_step == 40 and all(c.examples_per_step == 40 for c in chunked)
        for step in (0, 15, 40):
            for n in init:
                torch.testing.assert_close(torch.cat([c.snapshots[step][n] for c in chunked]), whole.snapshots[step][n],
                                           **WEIGHT_TOL)
        acc = torch.cat([c.test_acc for c in chunked])
        assert (acc - whole.test_acc).abs().max() <= 1 / 50 + 1e-6
        # The order really is per task: the same task at another global index sees other minibatches.
        moved = finetune(arch, {n: v[1:2] for n, v in init.items()}, *zip(*data[1:2]), replace(cfg, batch_size=40), 40,
                         keep=[40], seed=7, task_indices=[0])
        assert not all(torch.allclose(moved.snapshots[40][n][0], whole.snapshots[40][n][1]) for n in init)


def test_tasks_rebuilt_by_id_in_chunks_equal_one_run_here(tiny):
    family, arch = tiny["family"], tiny["arch"]
    tasks = [family.task(t) for t in family.heldout_task_ids()]
    init = {n: torch.stack([arch.init_params(10 + i)[n] for i in range(len(tasks))]) for n in arch.spec().names}
    job = FinetuneJob(arch, family.to_dict(), tasks, init, FinetuneConfig(batch_size=32), 20, [0, 5, 20], 5, seed=3)
    here = finetune_tasks(job)
    with WorkerPool(0) as pool:  # the payload path (numpy in, rebuilt tasks, numpy out) without processes
        seen = []
        chunked = finetune_tasks(job, pool=pool, slots=6, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (40, 40) and len(seen) == 6  # 3 chunks of one task per data source
    for data in ("support", "train"):
        a, b = here[data], chunked[data]
        assert a.grid.tolist() == b.grid.tolist() and a.examples_per_step == b.examples_per_step
        assert (a.test_acc - b.test_acc).abs().max() <= 1 / len(tasks[0].y_test) + 1e-6
        for step in (0, 5, 20):
            for n in init:
                torch.testing.assert_close(b.snapshots[step][n], a.snapshots[step][n], **WEIGHT_TOL)


def test_local_workers_give_the_in_process_results(tiny, in_process):
    two = evaluate([tiny["root"] / "gen"], tiny["root"] / "zoo", EvalConfig(**SMALL, workers=2))
    n_test = len(tiny["family"].task(tiny["family"].heldout_task_ids()[0]).y_test)
    same_accuracy(two["methods"], in_process["methods"], n_test)
    assert in_process["overall"]["finetune"]["backend"] == "local" and in_process["overall"]["finetune"]["workers"] == 0
    assert two["overall"]["finetune"]["workers"] == 2
    # Seconds stay what one task alone pays: its start's seconds + k x one measured single-task step.
    m, per_step = two["methods"], two["overall"]["finetune"]["seconds_per_step"]
    assert m["finetune:zoo-best:train@5"]["seconds_per_task"] == pytest.approx(
        m["retrieval"]["seconds_per_task"] + 5 * per_step["train"])


@pytest.fixture()
def ray_dirs():
    """Ray's files in a short temporary directory, nothing left in the home directory."""
    with ray_scratch():
        yield


def test_ray_backend_gives_the_local_results(tiny, in_process, ray_dirs):
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    # workers=4 on 2 CPUs: two chunks per data source, so chunks are merged here too.
    on_ray = evaluate([tiny["root"] / "gen"], tiny["root"] / "zoo", EvalConfig(**SMALL, backend="ray", workers=4))
    assert not ray.is_initialized(), "evaluate must shut down the Ray instance it started"
    n_test = len(tiny["family"].task(tiny["family"].heldout_task_ids()[0]).y_test)
    same_accuracy(on_ray["methods"], in_process["methods"], n_test)
    assert on_ray["overall"]["finetune"]["backend"] == "ray" and on_ray["overall"]["finetune"]["workers"] == 4


@pytest.mark.parametrize("options, match", [
    ({"backend": "dask"}, "backend must be one of local, ray"),
    ({"workers": -1}, "workers must be 0"),
    ({"workers": 1.5}, "workers must be 0"),
    ({"address": "auto"}, "use it with backend ray"),
])
def test_bad_backend_options_are_one_sentence(tmp_path, options, match):
    # Checked before the zoo is even opened: the path does not exist.
    with pytest.raises(WeightspaceError, match=match):
        evaluate([], tmp_path / "no-zoo", EvalConfig(**options))


def test_cli_refuses_a_bad_backend_before_writing(tiny, capsys):
    from weightspace.cli import eval_cmd, main  # noqa: F401  (eval_cmd registers `weightspace eval`)

    out = tiny["root"] / "bad"
    args = ["eval", str(tiny["root"] / "gen"), "--zoo", str(tiny["root"] / "zoo"), "--out", str(out), "--quiet"]
    assert main([*args, "--backend", "dask"]) == 2
    assert "backend must be one of local, ray" in capsys.readouterr().err
    assert main([*args, "--address", "auto"]) == 2
    assert "--backend ray" in capsys.readouterr().err
    assert not out.exists()


class RefusingPool:
    def run(self, fn, chunks, progress=None):
        raise AssertionError("networks over the payload limit must not be shipped")


def test_scoring_jobs_rebuilt_by_id_equal_scoring_here_and_big_networks_stay_here(tiny, monkeypatch):
    from weightspace.evaluate import task_jobs
    from weightspace.evaluate.context import load_context
    from weightspace.evaluate.methods import Method
    from weightspace.evaluate.scoring import score_methods

    ctx = load_context(tiny["root"] / "zoo")
    methods = []
    for i in range(3):  # zoo members as stand-in methods: one network per held-out task
        m = Method(f"member{i}", "generator", "member", "member")
        for _ in ctx.tasks:
            m.add(ctx.member(i), 0.0)
        methods.append(m)
    here, zoo_here = score_methods(ctx, methods)
    seen = []
    with WorkerPool(0) as pool:  # the payload path without processes
        shipped, zoo_shipped = score_methods(ctx, methods, progress=lambda d, n: seen.append((d, n)), pool=pool)
    assert seen[-1] == (2 * len(ctx.tasks), 2 * len(ctx.tasks))
    n_test = len(ctx.tasks[0].y_test)
    assert (zoo_here - zoo_shipped).abs().max() <= 1 / n_test + 1e-6
    for key in here:
        assert (here[key].acc - shipped[key].acc).abs().max() <= 1 / n_test + 1e-6
        torch.testing.assert_close(here[key].nn_dist, shipped[key].nn_dist)
    monkeypatch.setattr(task_jobs, "PAYLOAD_LIMIT", 0)
    small, _ = score_methods(ctx, methods, pool=RefusingPool())
    assert all(torch.equal(small[k].acc, here[k].acc) for k in here)


def test_cross_validated_chunks_replay_the_batched_run_even_with_unequal_support_sets():
    from weightspace.adapt.tuned_finetune import tuned_finetune

    arch = MLP(input_shape=(4,), n_classes=3, hidden=(16,))
    data = [blobs(i, n) for i, n in enumerate((12, 20, 9, 16))]  # the 9-example task caps every batch
    init = {n: torch.stack([arch.init_params(i)[n] for i in range(len(data))]) for n in arch.spec().names}
    args = ((0, 5, 10), (0.3, 1.0), 3, 4)  # steps, lr scales, folds, seed
    cfg = FinetuneConfig(batch_size=32)
    whole = tuned_finetune(arch, init, *zip(*data), cfg, *args)
    sizes = [len(y) for _, y in data]
    parts = [tuned_finetune(arch, {n: v[a:b] for n, v in init.items()}, *zip(*data[a:b]), cfg, *args,
                            task_indices=range(a, b), run_sizes=sizes) for a, b in ((0, 1), (1, 4))]
    chunked = [c for p in parts for c in p.choices]
    assert [(c.lr, c.steps, c.steps_run) for c in chunked] == [(c.lr, c.steps, c.steps_run) for c in whole.choices]
    assert all(abs(a.cv_acc - b.cv_acc) <= 1 / 3 + 1e-6 for a, b in zip(chunked, whole.choices))  # a flip in a 3-example fold
    assert all(p.examples_per_step == whole.examples_per_step for p in parts)
    for n in init:
        torch.testing.assert_close(torch.cat([p.weights[n] for p in parts]), whole.weights[n], **WEIGHT_TOL)


def test_cross_validated_fine_tuning_on_a_pool_rebuilds_tasks_by_id(tiny):
    from weightspace.evaluate.distributed import tuned_finetune_tasks

    family, arch = tiny["family"], tiny["arch"]
    tasks = [family.task(t) for t in family.heldout_task_ids()]
    init = {n: torch.stack([arch.init_params(20 + i)[n] for i in range(len(tasks))]) for n in arch.spec().names}
    args = (FinetuneConfig(batch_size=32), (0, 5, 10), (1.0,), 2, 5)
    here = tuned_finetune_tasks(arch, {}, tasks, init, *args)
    with WorkerPool(0) as pool:
        shipped = tuned_finetune_tasks(arch, family.to_dict(), tasks, init, *args, pool=pool, slots=2)
    assert [(c.lr, c.steps, c.steps_run) for c in shipped.choices] == [(c.lr, c.steps, c.steps_run) for c in here.choices]
    for n in init:
        torch.testing.assert_close(shipped.weights[n], here.weights[n], **WEIGHT_TOL)
