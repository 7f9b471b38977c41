"""Per-task forward work of an evaluation, spread over the harness's worker pool.

    for t, result in per_task(ctx, local, remote, nets_of, extra, pool, progress): ...

``local(job)`` runs here on ``{"task", "arch", "nets", **extra}``; ``remote(payload)`` is a
module-level function a worker runs on the picklable payload, ``remote = lambda p: local(rebuild(p))``
in effect (scoring.predict_job, embedding_classification.embedding_job).

Scoring (every method's network and every zoo member on each held-out test set) and the
MTEB-style score (every distinct body on each held-out task's sentences, then k small
regressions) are independent across tasks and, for a LoRA zoo of the frozen MiniLM, dominated by
forward passes: about 20 s and 28 s per task on one thread (py-spy on the wordnet demo: 99% and
94% of those stages are the forwards). With a pool (``--workers N`` or Ray) each task is one job:
the payload names the task (the worker rebuilds it from the family record, as fine-tuning chunks
do, and keeps it cached) and carries the networks to run as numpy arrays. The worker returns
predicted labels or the two MTEB figures per body; everything else (accuracy, novelty, aligned
distances) is computed here from them, so the results do not depend on where a job ran.

Networks travel only where they are small: above ``PAYLOAD_LIMIT`` bytes for one task (a zoo of
1M-weight MLPs: 100+ networks of 4 MB) the work stays in this process, where a dense net's few
matrix products per layer cost less than shipping it.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

PAYLOAD_LIMIT = 64 * 2**20  # bytes of networks per task job
Params = dict[str, torch.Tensor]
Progress = Callable[[int, int], None]


def _nbytes(params: Params) -> int:
    return sum(v.numel() * v.element_size() for v in params.values())


def per_task(ctx, local: Callable[[dict], object], remote: Callable[[dict], object],
             nets_of: Callable[[int], Params], extra: dict, pool,
             progress: Progress | None) -> Iterator[tuple[int, object]]:
    """``(t, result)`` for every task in order: ``remote`` on the pool's workers when there is a
    pool and a task's networks fit a payload (every task has as many networks of one spec as the
    first), else ``local`` here, one task's networks built at a time."""
    n = len(ctx.tasks)
    if pool is None or n == 0 or _nbytes(nets_of(0)) > PAYLOAD_LIMIT:
        for t, task in enumerate(ctx.tasks):
            yield t, local({"task": task, "arch": ctx.arch, "nets": nets_of(t), **extra})
            if progress is not None:
                progress(t + 1, n)
        return
    family, arch = ctx.family.to_dict(), ctx.arch.to_dict()
    payloads = [{"family": family, "arch": arch, "task_id": task.task_id, **extra,
                 "nets": {k: v.detach().contiguous().numpy() for k, v in nets_of(t).items()}}
                for t, task in enumerate(ctx.tasks)]
    results = dict(pool.run(remote, payloads, progress))
    yield from ((t, results[t]) for t in range(n))


def rebuild(payload: dict) -> dict:
    """A worker's view of a payload: the task rebuilt by id, the networks as tensors."""
    from weightspace.nets import arch_from_dict
    from weightspace.tasks import cached_family

    torch.set_num_threads(1)
    family = cached_family(payload["family"])  # first: it registers the families' architectures
    nets = {k: torch.tensor(v) for k, v in payload["nets"].items()}
    return {**payload, "task": family.task(payload["task_id"]), "arch": arch_from_dict(payload["arch"]), "nets": nets}
