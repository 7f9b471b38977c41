"""Run picklable jobs in worker processes that use one torch thread each.

On a small CPU, parallelism comes from processes (and from vmap inside each), never from
torch's intra-op threads: two threads per process on two cores is many times slower for small
models. Jobs should be small descriptions (task ids, seeds, configs) from which the worker
rebuilds its data, not big tensors.

    for index, result in run_chunks(train_chunk, jobs, workers=2, progress=bar.update):
        ...  # results arrive as jobs complete, not in job order

``run_chunks`` starts a pool for one batch of jobs. ``WorkerPool`` keeps its processes (and
whatever they cached, such as rebuilt tasks) across several batches:

    with WorkerPool(2, initializer=warm_up, initargs=(recipe,)) as pool:
        results = dict(pool.run(train_chunk, jobs))

``workers=0`` runs the jobs here, in order, also with one torch thread (restored afterwards):
the same code path without processes, for debugging and for tests.

``open_pool(backend, workers, address)`` picks the pool by name: ``local`` is a WorkerPool,
``ray`` a ``ray_backend.RayPool`` on a Ray cluster (same ``run`` contract, one CPU per job).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence

import torch

from weightspace.errors import WeightspaceError

Progress = Callable[[int, int], None]
BACKENDS = ("local", "ray")


class WorkerPool:
    """``workers`` processes, each with one torch thread; ``initializer(*initargs)`` runs once in each.

    ``fn``, ``initializer`` and the jobs must be picklable (module-level functions, small data).
    """

    def __init__(self, workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()):
        if not isinstance(workers, int) or workers < 0:
            raise WeightspaceError(f"workers must be 0 (run here) or a positive number of processes, got {workers!r}.")
        self.workers = workers
        self._initializer, self._initargs = initializer, initargs
        self._pool = None
        if workers:
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(),
                                             initializer=_start_worker, initargs=(os.getpid(), initializer, initargs))
        elif initializer is not None:
            _with_one_thread(initializer, *initargs)

    def run(self, fn: Callable[[Any], Any], chunks: Sequence[Any],
            progress: Progress | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(i, fn(chunks[i]))`` as jobs finish; ``progress(done, total)`` after each one.

        An exception in a job is raised here, and the jobs not yet started are cancelled.
        """
        total = len(chunks)
        if self._pool is None:
            for i, chunk in enumerate(chunks):
                result = _with_one_thread(fn, chunk)
                if progress is not None:
                    progress(i + 1, total)
                yield i, result
            return
        pending = {self._pool.submit(fn, chunk): i for i, chunk in enumerate(chunks)}
        try:
            finished = 0
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    result = future.result()  # re-raises the worker's exception
                    finished += 1
                    if progress is not None:
                        progress(finished, total)
                    yield index, result
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_chunks(fn: Callable[[Any], Any], chunks: Sequence[Any], workers: int,
               progress: Progress | None = None) -> Iterator[tuple[int, Any]]:
    """Run ``fn`` on every chunk in a fresh pool of ``workers`` processes (0: here); see ``WorkerPool.run``."""
    with WorkerPool(min(workers, max(len(chunks), 1)) if workers else 0) as pool:
        yield from pool.run(fn, chunks, progress)


def open_pool(backend: str = "local", workers: int = 2, address: str | None = None):
    """A pool with ``run(fn, chunks, progress)``: ``workers`` local processes, or a Ray cluster.

    ``address`` (ray only) names the cluster (host:6379, ray://host:10001, auto); None starts a
    local Ray instance. Ray schedules one job per cluster CPU, so ``workers`` is for ``local``.
    """
    if backend == "local":
        if address is not None:
            raise WeightspaceError("--address names a Ray cluster; use it with --backend ray.")
        return WorkerPool(workers)
    if backend == "ray":
        from weightspace.zoo.ray_backend import RayPool

        return RayPool(address=address)
    raise WeightspaceError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")


def _with_one_thread(fn: Callable[..., Any], *args: Any) -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(threads)


def _start_worker(owner: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    torch.set_num_threads(1)
    threading.Thread(target=_exit_when_gone, args=(owner,), name="weightspace-owner-watch", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


OWNER_POLL_SECONDS = 0.5


def _exit_when_gone(owner: int) -> None:
    """End this worker soon after the process that started the pool is gone, however it died.

    A worker's parent is the forkserver, not the pool's owner, so neither PR_SET_PDEATHSIG nor
    the executor's own shutdown helps after a kill -9 of the owner: orphaned workers (and the
    forkserver they keep busy) would hold their memory until someone killed them."""
    while True:
        time.sleep(OWNER_POLL_SECONDS)
        try:
            os.kill(owner, 0)
        except (ProcessLookupError, PermissionError):  # PermissionError: the pid now belongs to another user's process
            os._exit(1)  # either way the owner is gone


def _context():
    """forkserver where the platform has it: torch is imported once by the server, so starting
    each pool's workers costs a fork instead of a fresh interpreter importing torch."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", "weightspace.zoo.train"])
        return ctx
    return multiprocessing.get_context("spawn")
