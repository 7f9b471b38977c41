"""Batched zoo training: many members in one step with ``torch.func``.

Every member's tensors are stacked along a leading member axis. One step gathers each member's
own minibatch, runs ``vmap(functional_call)`` over the member axis, and backpropagates the
*sum* of the members' mean losses, so each member's gradient is exactly its own. The optimizer
(``zoo.recipe.make_optimizer``) updates elementwise, so member i follows the trajectory it
would follow alone (``train_single``, same recipe) up to float rounding.

Data: tasks[i] and seeds[i] belong to member i. Training rows are gathered from a pool that
holds each distinct tensor once: tasks that share one ``x_train`` object (class-subset tasks
differ only in labels) are not copied per member; different tensors, even of different
lengths, are concatenated and addressed by per-member offsets.

Measured on this project's 2-core CPU (64-member digits MLP chunk, CPU time per member-step):
autograd plus torch.optim's fused AdamW on the stacked leaves (~54 us) beats ``torch.func.grad``
plus a hand-written foreach Adam (~76 us) and matches an update on one flat parameter vector,
so the trainer uses torch.optim: exactly the baseline's update.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch.func import functional_call, vmap

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture
from weightspace.tasks.base import Task
from weightspace.zoo.recipe import BatchStream, TrainConfig, check_config, check_task, cross_entropy, make_optimizer
from weightspace.zoo.sequential import INDEX_BLOCK, train_single

Params = dict[str, torch.Tensor]

# Floats of activations one evaluation chunk may hold (all members together): 128 MiB.
EVAL_FLOAT_BUDGET = 2**25

__all__ = ["TrainConfig", "TrainResult", "train_members", "train_single", "evaluate_members"]


@dataclass
class TrainResult:
    final: Params  # stacked, member axis first, spec names
    metrics: list[dict[str, float]]  # per member: train_acc, test_acc, train_loss, test_loss
    snapshots: list[tuple[int, Params]] = field(default_factory=list)  # (step, stacked params), step order
    seconds: float = 0.0  # wall time of the whole chunk


def train_members(arch: Architecture, tasks: Sequence[Task], seeds: Sequence[int], cfg: TrainConfig,
                  init: Params | None = None) -> TrainResult:
    """Train len(tasks) members at once; member i trains on tasks[i] from seeds[i].

    init=None: member i starts from ``arch.init_params(seeds[i], cfg.init_scheme)``; otherwise
    every member starts from the given (unstacked) shared weights. Snapshots are taken every
    ``cfg.snapshot_every`` steps and at the last step (none when snapshot_every is 0).
    """
    started = time.perf_counter()
    check_config(cfg)
    if len(tasks) == 0 or len(tasks) != len(seeds):
        raise WeightspaceError(f"train_members needs one seed per task, got {len(tasks)} tasks and {len(seeds)} seeds.")
    for i, (task, seed) in enumerate(zip(tasks, seeds)):
        check_task(arch, task, seed, where=f"member {i}")
    spec, m = arch.spec(), len(tasks)
    if init is None:
        start = arch.init_params_stacked(list(seeds), cfg.init_scheme)
    else:
        spec.validate(init, where="shared initial weights")
        start = {n: init[n].detach().to(torch.float32).expand(m, *init[n].shape) for n in spec.names}
    params = {n: start[n].clone().requires_grad_(True) for n in spec.names}
    optimizer = make_optimizer(list(params.values()), cfg)
    x_pool, y_pool = _RowPool([t.x_train for t in tasks]), _RowPool([t.y_train for t in tasks])
    streams = [BatchStream(len(t.y_train), cfg.batch_size, s) for t, s in zip(tasks, seeds)]
    summed_loss = _summed_loss(arch.module().to("meta"))  # structure only; weights come from params

    snapshots: list[tuple[int, Params]] = []
    for block_start in range(0, cfg.steps, INDEX_BLOCK):
        block = torch.stack([s.take(min(INDEX_BLOCK, cfg.steps - block_start)) for s in streams], dim=1)
        for offset, rows in enumerate(block):  # rows: (members, batch)
            loss = summed_loss(params, x_pool.rows(rows), y_pool.rows(rows))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step = block_start + offset + 1
            if cfg.snapshot_every and step % cfg.snapshot_every == 0:
                snapshots.append((step, _copy(params)))
    if cfg.snapshot_every and (not snapshots or snapshots[-1][0] != cfg.steps):
        snapshots.append((cfg.steps, _copy(params)))

    final = _copy(params)
    metrics = _task_metrics(arch, final, tasks)
    return TrainResult(final, metrics, snapshots, time.perf_counter() - started)


@torch.no_grad()
def evaluate_members(arch: Architecture, params_stacked: Params, x: torch.Tensor, y: torch.Tensor,
                     batch: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Accuracy (M,) and mean cross-entropy (M,) of M stacked members, ``batch`` examples at a time.

    x is (N, ...) shared by all members or (M, N, ...) per member; y is (N,) or (M, N).
    Activation memory is about M * batch * (widest layer); lower ``batch`` for big members.
    """
    spec = arch.spec()
    spec.validate(params_stacked, stacked=True, where="evaluated weights", check_finite=False)
    m = params_stacked[spec.names[0]].shape[0]
    in_shape = tuple(x.shape[1:]) if arch.input_shape is None else tuple(arch.input_shape)
    shared = tuple(x.shape[1:]) == in_shape
    if not shared and (tuple(x.shape[2:]) != in_shape or x.shape[0] != m):
        raise WeightspaceError(f"evaluation inputs shaped {tuple(x.shape)} fit neither (N, *{in_shape}) nor ({m}, N, *{in_shape}).")
    n = x.shape[0] if shared else x.shape[1]
    if y.shape[-1] != n or y.dim() not in (1, 2) or (y.dim() == 2 and y.shape[0] != m):
        raise WeightspaceError(f"evaluation labels shaped {tuple(y.shape)} do not match {n} inputs for {m} members.")
    chunks = ((x[a:a + batch] if shared else x[:, a:a + batch], y[..., a:a + batch]) for a in range(0, n, batch))
    acc, loss = _evaluate_chunks(arch.module().to("meta"), params_stacked, chunks, shared, n)
    return acc.float(), loss.float()


# ----- internals -----------------------------------------------------------------------------

class _RowPool:
    """Per-member row gathering from one tensor that holds each distinct source tensor once."""

    def __init__(self, tensors: Sequence[torch.Tensor]):
        distinct: dict[int, int] = {}  # id(tensor) -> row offset in the pool
        parts, offsets, total = [], [], 0
        for t in tensors:
            if id(t) not in distinct:
                distinct[id(t)] = total
                parts.append(t)
                total += len(t)
            offsets.append(distinct[id(t)])
        # A single shared tensor is used as is: no copy for class-subset style tasks.
        self.data = parts[0].contiguous() if len(parts) == 1 else torch.cat(parts)
        self.offsets = torch.tensor(offsets, dtype=torch.int64).unsqueeze(1)

    def rows(self, index: torch.Tensor) -> torch.Tensor:
        """(M, B, ...) rows; index (M, B) counts rows inside each member's own tensor."""
        flat = (index + self.offsets).reshape(-1)
        return self.data.index_select(0, flat).view(*index.shape, *self.data.shape[1:])


def _summed_loss(model: torch.nn.Module) -> Callable[[Params, torch.Tensor, torch.Tensor], torch.Tensor]:
    def member_loss(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cross_entropy(functional_call(model, params, (x,)), y).mean()

    batched = vmap(member_loss)
    return lambda params, x, y: batched(params, x, y).sum()


def _copy(params: Params) -> Params:
    return {n: p.detach().clone() for n, p in params.items()}


def _evaluate_chunks(model, params, chunks, shared_x: bool, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 accuracy and mean loss per member over (x, y) chunks."""
    forward = vmap(lambda p, x: functional_call(model, p, (x,)), in_dims=(0, None if shared_x else 0))
    m = next(iter(params.values())).shape[0]
    correct = torch.zeros(m, dtype=torch.int64)
    loss = torch.zeros(m, dtype=torch.float64)
    for x, y in chunks:
        logits = forward(params, x)
        y = y.expand(m, -1)
        correct += (logits.argmax(-1) == y).sum(1)
        loss += cross_entropy(logits, y).sum(1, dtype=torch.float64)
    if n == 0:
        return torch.full((m,), float("nan"), dtype=torch.float64), torch.full((m,), float("nan"), dtype=torch.float64)
    return correct.double() / n, loss / n


def _activation_floats(arch: Architecture) -> int:
    """Floats of the widest input or layer output for one example (sizes evaluation chunks)."""
    sizes = [math.prod(arch.input_shape)]
    model = arch.module()
    hooks = [mod.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel())) for mod in model.modules()]
    with torch.no_grad():
        model(torch.zeros(1, *arch.input_shape))
    for h in hooks:
        h.remove()
    return max(sizes)


@torch.no_grad()
def _task_metrics(arch: Architecture, params: Params, tasks: Sequence[Task]) -> list[dict[str, float]]:
    """Full train and test metrics of every member, evaluating members that share inputs together."""
    model, width = arch.module().to("meta"), _activation_floats(arch)
    metrics: list[dict[str, float]] = [{} for _ in tasks]
    for split in ("train", "test"):
        xs = [getattr(t, f"x_{split}") for t in tasks]
        ys = [getattr(t, f"y_{split}") for t in tasks]
        for members, shared in _evaluation_groups(xs):
            sub = {name: p[members] for name, p in params.items()}
            n = len(ys[members[0]])
            batch = max(1, EVAL_FLOAT_BUDGET // (len(members) * width))

            def chunks(members=members, shared=shared, batch=batch):
                for a in range(0, n, batch):
                    x = xs[members[0]][a:a + batch] if shared else torch.stack([xs[i][a:a + batch] for i in members])
                    yield x, torch.stack([ys[i][a:a + batch] for i in members])

            acc, loss = _evaluate_chunks(model, sub, chunks(), shared, n)
            for j, i in enumerate(members):
                metrics[i][f"{split}_acc"], metrics[i][f"{split}_loss"] = float(acc[j]), float(loss[j])
    return [{k: d[k] for k in ("train_acc", "test_acc", "train_loss", "test_loss")} for d in metrics]


def _evaluation_groups(xs: Sequence[torch.Tensor]) -> list[tuple[list[int], bool]]:
    """(member indices, shares one x tensor) groups: shared tensors first, then equal lengths."""
    by_tensor: dict[int, list[int]] = {}
    for i, x in enumerate(xs):
        by_tensor.setdefault(id(x), []).append(i)
    groups, by_length = [], {}
    for members in by_tensor.values():
        if len(members) > 1:
            groups.append((members, True))
        else:
            by_length.setdefault(len(xs[members[0]]), []).extend(members)
    groups += [(members, False) for members in by_length.values()]
    return groups
