"""Data-parallel training of generators over torch.distributed (gloo on CPU, NCCL on GPU).

A training loop becomes data-parallel with three calls, and stays an ordinary single-process
loop when no process group exists (``DataParallel.current()`` is then rank 0 of 1, every call a
no-op or the identity):

    par = DataParallel.current()
    par.broadcast(params)                       # once: every rank starts from rank 0's weights
    for step in range(steps):
        batch = draw_full_batch(g)              # every rank draws the *whole* batch, same seed
        rows = par.rows(len(batch))             # ... and computes the loss on its share of it
        loss = loss_fn(batch[rows])
        opt.zero_grad(); loss.backward()
        loss_value = par.average_gradients(params, loss, share=(rows.stop - rows.start) / len(batch))
        opt.step()

Why the whole batch is drawn everywhere: every random number a step uses (members, noise,
timesteps, support sets) then comes from the same seeded generator in the same order as in a
single process, so N processes with a global batch B take exactly the steps one process takes
with batch B, up to float rounding in the gradient sum. Drawing is cheap; the network's forward
and backward pass, the expensive part, runs on 1/N of the rows per process.

``average_gradients`` turns each rank's gradient of its *local* mean loss into the gradient of
the global mean: g = sum_r share_r * g_r, with ``share_r`` the rank's fraction of the batch (its
rows, or its real entries when padding is masked). All gradients travel in one flat buffer per
step (one all-reduce, like a DDP bucket), together with the loss and a flag per parameter saying
whether any rank produced a gradient for it, so a parameter no rank used (e.g. a null
embedding in a step without dropped conditions) keeps ``grad = None`` exactly as it would alone.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist

from weightspace.errors import WeightspaceError

BACKENDS = ("auto", "gloo", "nccl")
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DataParallel:
    """This process's place among the processes that train one model together."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def current(cls) -> "DataParallel":
        """Rank and size of the default process group, or rank 0 of 1 when there is none."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
        return cls()

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that reports progress and writes files."""
        return self.rank == 0

    def rows(self, n: int) -> slice:
        """This rank's contiguous share of a batch of n rows; shares differ by at most one row."""
        base, extra = divmod(int(n), self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def device(self, requested: str | torch.device = "cpu") -> torch.device:
        """The device this rank trains on: ``cuda`` means this rank's own GPU (cuda:LOCAL_RANK)."""
        dev = torch.device(requested)
        if dev.type == "cuda" and dev.index is None:
            return torch.device("cuda", self.local_rank if self.world > 1 else torch.cuda.current_device())
        return dev

    @torch.no_grad()
    def broadcast(self, tensors: Iterable[torch.Tensor]) -> None:
        """Overwrite every rank's tensors with rank 0's (in place)."""
        if self.world == 1:
            return
        for t in tensors:
            dist.broadcast(t.data, src=0)

    @torch.no_grad()
    def average_gradients(self, params: Iterable[torch.nn.Parameter], loss: torch.Tensor, share: float) -> float:
        """Set every ``p.grad`` to the gradient of the global batch loss; return that loss.

        ``loss`` is this rank's mean loss over its share of the batch; ``share`` the fraction of
        the batch it covers (the shares of all ranks sum to 1).
        """
        if self.world == 1:
            return float(loss.detach())
        params = list(params)
        if not params:
            raise WeightspaceError("average_gradients got no parameters to synchronise.")
        dev = params[0].device
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) * share for p in params]
                         + [torch.tensor([float(p.grad is not None) for p in params], device=dev),
                            (loss.detach().float() * share).reshape(1).to(dev)])
        dist.all_reduce(flat)  # sum over ranks
        start = 0
        for i, p in enumerate(params):
            n = p.numel()
            used = flat[-1 - len(params) + i] > 0
            p.grad = flat[start:start + n].view_as(p).clone() if used else None
            start += n
        return float(flat[-1])


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in TORCHRUN_ENV)


def resolve_backend(backend: str, device: str | torch.device) -> str:
    """``auto``: NCCL when training on CUDA GPUs, gloo on CPU (NCCL cannot reduce CPU tensors)."""
    if backend not in BACKENDS:
        raise WeightspaceError(f"distributed backend must be one of {', '.join(BACKENDS)}, not {backend!r}.")
    on_gpu = torch.device(device).type == "cuda"
    if backend == "auto":
        return "nccl" if on_gpu else "gloo"
    if backend == "nccl" and not on_gpu:
        raise WeightspaceError("the nccl backend reduces GPU tensors only; train on device=cuda or use --backend gloo.")
    return backend


def init_from_torchrun(backend: str = "auto", device: str | torch.device = "cpu",
                       timeout_s: float = 1800.0) -> DataParallel:
    """Join the process group torchrun describes in the environment (rank 0 of 1 without torchrun)."""
    if not launched_by_torchrun():
        return DataParallel()
    if not dist.is_available():
        raise WeightspaceError("this torch build has no torch.distributed; install a standard torch wheel.")
    chosen = resolve_backend(backend, device)
    if not dist.is_initialized():
        device = None
        if chosen == "nccl":  # bind the rank to its GPU up front (NCCL otherwise guesses, and warns)
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            torch.cuda.set_device(device)
        dist.init_process_group(chosen, timeout=datetime.timedelta(seconds=timeout_s), device_id=device)
    return DataParallel.current()


def shutdown(wait_for_others: bool = True) -> None:
    """Leave the process group, if this process joined one.

    ``wait_for_others``: first wait until every rank is done (the normal end). After an error,
    leave at once: the other ranks may be inside a collective that will never complete, and
    torchrun stops them when this process exits with an error.
    """
    if dist.is_available() and dist.is_initialized():
        if wait_for_others:
            dist.barrier()
        dist.destroy_process_group()
