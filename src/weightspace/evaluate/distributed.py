"""Fine-tuning the held-out tasks in chunks on a worker pool: local processes or a Ray cluster.

Fine-tuning (every held-out task from each start, on its support set and on its full train
set, up to the budget) is by far the most expensive stage of an evaluation, and tasks are
independent. Each chunk of tasks travels as a small payload (architecture and task family as
dicts, task ids, the chunk's start weights as numpy arrays, the tasks' global indices); the
worker rebuilds the tasks by id and runs ``adapt.finetune.finetune`` with one torch thread.

Cross-validated fine-tuning on the support sets (``tuned_finetune_tasks``) is chunked the same
way. The merged result equals one batched run up to float rounding, because every chunk uses

- the same minibatch size (the smallest data set of *all* tasks caps it, not the chunk's), and
- the same example order per task (``finetune`` seeds it from the seed and the task's global
  index, whatever else is in the chunk).

    with open_finetune_pool("ray", 0, "auto") as pool:      # None for local with 0 workers
        runs = finetune_tasks(job, pool=pool)               # {"support": FinetuneRun, "train": ...}
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from weightspace.adapt.finetune import FinetuneConfig, FinetuneRun, finetune
from weightspace.adapt.tuned_finetune import TunedChoice, TunedRun, tuned_finetune
from weightspace.config import from_mapping, to_dict
from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture
from weightspace.tasks.base import Task
from weightspace.zoo.workers import BACKENDS, WorkerPool, open_pool

DATA = ("support", "train")
Progress = Callable[[int, int], None]


def task_data(task: Task, data: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The examples a fine-tune on ``data`` ("support" or "train") sees."""
    return (task.support_x, task.support_y) if data == "support" else (task.x_train, task.y_train)


def stacked_test_sets(tasks: Sequence[Task]):
    """Each task's test set; stacked (T, N, ...) when they share a shape, as accuracy_per_member prefers."""
    xs, ys = [t.x_test for t in tasks], [t.y_test for t in tasks]
    if all(x.shape == xs[0].shape for x in xs):  # stacked once, not at every grid step
        return torch.stack(xs), torch.stack(ys)
    return xs, ys


@dataclass
class FinetuneJob:
    """Fine-tune ``tasks[i]`` from member i of the stacked ``init``; the family rebuilds the tasks."""

    arch: Architecture
    family: dict  # TaskFamily.to_dict(): a worker rebuilds the tasks from it by id
    tasks: list[Task]
    init: dict[str, torch.Tensor]  # stacked (T, ...)
    cfg: FinetuneConfig
    steps: int
    keep: list[int]
    eval_every: int
    seed: int = 0


def finetune_tasks(job: FinetuneJob, data: Sequence[str] = DATA, pool=None, slots: int = 0,
                   progress: Progress | None = None) -> dict[str, FinetuneRun]:
    """One ``FinetuneRun`` per data source, tasks in order.

    ``pool=None``: one batched run per source, here (``progress`` counts steps). Otherwise the
    tasks of every source are split into chunks run by ``pool`` (``progress`` counts chunks,
    scaled to the same total); ``slots`` is how many chunks the pool runs at once (see
    ``pool_slots``).
    """
    total = len(data) * job.steps
    if pool is None:
        runs = {}
        test = stacked_test_sets(job.tasks)
        for i, source in enumerate(data):
            xs, ys = zip(*(task_data(t, source) for t in job.tasks))
            tick = None if progress is None else (lambda s, n, i=i: progress(i * n + s, total))
            runs[source] = finetune(job.arch, job.init, xs, ys, job.cfg, job.steps, test=test, eval_every=job.eval_every,
                                    keep=job.keep, seed=job.seed, progress=tick)
        return runs
    payloads, owners = [], []
    # One wave: with S slots and two sources, S/2 chunks each; fewer, larger chunks vectorise better.
    per_source = max(1, round(slots / len(data)))
    for source in data:
        for chunk in _chunks(len(job.tasks), per_source):
            payloads.append(_payload(job, source, chunk))
            owners.append((source, chunk))
    tick = None if progress is None else (lambda done, n: progress(done * total // max(n, 1), total))
    results = dict(pool.run(finetune_chunk, payloads, tick))
    return {source: _merge([results[i] for i, (s, _) in enumerate(owners) if s == source]) for source in data}


def _rebuild_chunk(payload: dict) -> tuple[Architecture, list[Task], FinetuneConfig]:
    """A worker's view of a chunk payload (one torch thread): its architecture, its tasks rebuilt
    by id from the family record, and its fine-tuning config."""
    from weightspace.nets import arch_from_dict
    from weightspace.tasks import cached_family

    torch.set_num_threads(1)
    family = cached_family(payload["family"])  # first: it registers the families' architectures
    arch = arch_from_dict(payload["arch"])
    tasks = [family.task(t) for t in payload["task_ids"]]
    return arch, tasks, from_mapping(FinetuneConfig, payload["finetune"], where="fine-tuning config")


def finetune_chunk(payload: dict) -> dict:
    """The worker: rebuild the chunk's tasks, fine-tune them; numpy results (plain bytes travel)."""
    arch, tasks, cfg = _rebuild_chunk(payload)
    xs, ys = zip(*(task_data(t, payload["data"]) for t in tasks))
    init = {n: torch.tensor(v) for n, v in payload["init"].items()}
    run = finetune(arch, init, xs, ys, cfg, payload["steps"], test=stacked_test_sets(tasks), eval_every=payload["eval_every"],
                   keep=payload["keep"], seed=payload["seed"], task_indices=payload["task_indices"])
    return {"grid": run.grid.tolist(), "test_acc": run.test_acc.numpy(), "train_seconds": run.train_seconds,
            "examples_per_step": run.examples_per_step,
            "snapshots": {step: {n: v.numpy() for n, v in p.items()} for step, p in run.snapshots.items()}}


def tuned_finetune_tasks(arch: Architecture, family: dict, tasks: Sequence[Task], starts: dict[str, torch.Tensor],
                         cfg: FinetuneConfig, steps: Sequence[int], lr_scales: Sequence[float], folds: int,
                         seed: int = 0, pool=None, slots: int = 0) -> TunedRun:
    """``adapt.tuned_finetune`` of every task on its support set from the stacked ``starts``:
    here (``pool=None``), or in ``slots`` chunks of tasks on ``pool``. Each chunk passes its
    tasks' global indices and every task's support size, so it replays the batched run."""
    xs, ys = [t.support_x for t in tasks], [t.support_y for t in tasks]
    if pool is None:
        return tuned_finetune(arch, starts, xs, ys, cfg, steps, lr_scales, folds, seed)
    sizes = [len(y) for y in ys]
    chunks = _chunks(len(tasks), max(1, slots))
    payloads = [{"arch": arch.to_dict(), "family": family, "task_ids": [tasks[i].task_id for i in c],
                 "task_indices": list(c), "run_sizes": sizes, "finetune": to_dict(cfg), "steps": list(steps),
                 "lr_scales": list(lr_scales), "folds": folds, "seed": seed,
                 "starts": {n: v[c.start:c.stop].detach().contiguous().numpy() for n, v in starts.items()}}
                for c in chunks]
    parts = dict(pool.run(tuned_chunk, payloads))
    parts = [parts[i] for i in range(len(chunks))]
    return TunedRun(choices=[TunedChoice(**c) for p in parts for c in p["choices"]],
                    weights={n: torch.cat([torch.tensor(p["weights"][n]) for p in parts]) for n in starts},
                    examples_per_step=parts[0]["examples_per_step"])


def tuned_chunk(payload: dict) -> dict:
    """The worker: rebuild the chunk's tasks, cross-validate and fine-tune them (numpy back)."""
    arch, tasks, cfg = _rebuild_chunk(payload)
    run = tuned_finetune(arch, {n: torch.tensor(v) for n, v in payload["starts"].items()},
                         [t.support_x for t in tasks], [t.support_y for t in tasks], cfg, payload["steps"],
                         payload["lr_scales"], payload["folds"], payload["seed"],
                         task_indices=payload["task_indices"], run_sizes=payload["run_sizes"])
    return {"choices": [asdict(c) for c in run.choices], "examples_per_step": run.examples_per_step,
            "weights": {n: v.numpy() for n, v in run.weights.items()}}


def _payload(job: FinetuneJob, source: str, chunk: range) -> dict:
    # Every chunk uses the batch size of the whole run (capped by the smallest data set of all tasks).
    batch = min([job.cfg.batch_size, *(len(task_data(t, source)[1]) for t in job.tasks)])
    return {"arch": job.arch.to_dict(), "family": job.family, "data": source,
            "task_ids": [job.tasks[i].task_id for i in chunk], "task_indices": list(chunk),
            "init": {n: v[chunk.start:chunk.stop].detach().contiguous().numpy() for n, v in job.init.items()},
            "finetune": to_dict(replace(job.cfg, batch_size=batch)), "steps": job.steps, "keep": list(job.keep),
            "eval_every": job.eval_every, "seed": job.seed}


def _chunks(n: int, parts: int) -> list[range]:
    """``parts`` contiguous ranges covering 0..n-1, sizes differing by at most one."""
    parts = max(1, min(parts, n))
    bounds = [n * k // parts for k in range(parts + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _merge(parts: list[dict]) -> FinetuneRun:
    """Chunk results (in task order) back into one run."""
    # torch.tensor copies: Ray hands back read-only numpy views of its object store.
    grid = parts[0]["grid"]
    run = FinetuneRun(grid=torch.tensor(grid), test_acc=torch.cat([torch.tensor(p["test_acc"]) for p in parts]),
                      train_seconds=float(sum(p["train_seconds"] for p in parts)),
                      examples_per_step=parts[0]["examples_per_step"])
    for step in parts[0]["snapshots"]:
        run.snapshots[step] = {n: torch.cat([torch.tensor(p["snapshots"][step][n]) for p in parts])
                               for n in parts[0]["snapshots"][step]}
    return run


def check_backend(backend: str, workers: Any, address: str | None) -> None:
    if backend not in BACKENDS:
        raise WeightspaceError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise WeightspaceError(f"workers must be 0 (fine-tune in this process) or a positive number, got {workers!r}.")
    if address is not None and backend != "ray":
        raise WeightspaceError("address names a Ray cluster; use it with backend ray (--backend ray).")


def open_finetune_pool(backend: str = "local", workers: int = 0, address: str | None = None):
    """A context manager giving the pool fine-tuning runs on, or None (local, 0 workers: here).

    A Ray pool connects to ``address`` (None starts a local Ray instance, shut down on exit).
    """
    check_backend(backend, workers, address)
    if backend == "local" and workers == 0:
        return contextlib.nullcontext(None)
    return open_pool(backend, workers, address)


def pool_slots(pool, workers: int = 0) -> int:
    """Chunks the pool runs at once: its processes, or ``workers`` (if > 0) else the Ray cluster's CPUs."""
    if pool is None:
        return 0
    if isinstance(pool, WorkerPool):
        return pool.workers
    if workers > 0:
        return workers
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))

