"""Run picklable jobs as Ray tasks: the same contract as ``workers.WorkerPool``, on a cluster.

    with RayPool(address="auto") as pool:          # or address=None: a local Ray instance
        for index, result in pool.run(train_chunk, jobs):
            ...  # results arrive as tasks complete, not in job order

Each job is one Ray task that asks for one CPU and sets one torch thread, so a cluster runs as
many chunks at once as it has CPUs, each with the arithmetic of a local worker (same seeds,
same weights). Jobs are small descriptions (task ids, seeds, configs); every node must have
weightspace installed (the same version as the driver) and rebuilds its data from them.

At most ``max_in_flight`` tasks are submitted at a time (default: twice the cluster's CPUs):
finished results wait in Ray's object store, not in the driver's memory, until they are read.

If Ray is already initialised (a test fixture, a notebook), the pool uses that instance and
leaves it running; otherwise it connects to ``address`` (or starts a local instance when it is
None) and shuts Ray down again on ``close``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from weightspace.errors import WeightspaceError

Progress = Callable[[int, int], None]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise WeightspaceError(
            "the ray backend needs Ray; install it with `pip install 'weightspace[ray]'` (or `pip install ray`)."
        ) from None
    return ray


def _run_with_one_thread(fn: Callable[[Any], Any], chunk: Any, driver_version: str) -> Any:
    """Body of every Ray task: check the worker runs the driver's weightspace, then run fn."""
    import torch

    import weightspace

    if weightspace.__version__ != driver_version:
        raise WeightspaceError(
            f"a Ray worker has weightspace {weightspace.__version__}, the driver {driver_version}; "
            "install the same version on every node."
        )
    torch.set_num_threads(1)  # the CPU Ray reserved for this task, and no more
    return fn(chunk)


class RayPool:
    """Ray tasks with one CPU and one torch thread each; ``run`` yields ``(i, fn(chunks[i]))``."""

    def __init__(self, address: str | None = None, max_in_flight: int | None = None, **init_options: Any):
        if max_in_flight is not None and max_in_flight < 1:
            raise WeightspaceError(f"max_in_flight must be at least 1, got {max_in_flight}.")
        ray = _import_ray()
        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            try:
                ray.init(address=address, **{"log_to_driver": False, **init_options})
            except ConnectionError as e:
                raise WeightspaceError(
                    f"cannot reach a Ray cluster at {address!r} ({e}); start one with `ray start --head` "
                    "or pass its address (host:6379, ray://host:10001 or auto)."
                ) from None
        self._task = ray.remote(num_cpus=1, max_retries=1)(_run_with_one_thread)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.max_in_flight = max_in_flight or max(2 * cpus, 2)

    def run(self, fn: Callable[[Any], Any], chunks: Sequence[Any],
            progress: Progress | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(i, fn(chunks[i]))`` as tasks finish; ``progress(done, total)`` after each one.

        An exception in a task is raised here (the task's own exception where Ray kept it), and
        the tasks still pending are cancelled.
        """
        import weightspace

        ray = self._ray
        total = len(chunks)
        version = weightspace.__version__
        fn_ref = ray.put(fn)  # shipped once, not with every task
        pending: dict[Any, int] = {}
        submitted = finished = 0
        try:
            while finished < total:
                while submitted < total and len(pending) < self.max_in_flight:
                    pending[self._task.remote(fn_ref, chunks[submitted], version)] = submitted
                    submitted += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(done[0])
                result = self._get(done[0])
                finished += 1
                if progress is not None:
                    progress(finished, total)
                yield index, result
        finally:
            for ref in pending:
                ray.cancel(ref)

    def _get(self, ref: Any) -> Any:
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, (ModuleNotFoundError, ImportError)):
                raise WeightspaceError(
                    f"a Ray worker cannot import what the job needs ({cause}); install weightspace on every node of the cluster."
                ) from None
            if isinstance(cause, BaseException):
                raise cause from None
            raise

    def close(self) -> None:
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_ray = False

    def __enter__(self) -> "RayPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
