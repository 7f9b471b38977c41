"""What training one zoo member means: config, data order, loss and optimizer.

Both trainers read this file — the batched one (``zoo.train``) and the one-model-at-a-time
baseline (``zoo.sequential``) — so "member i of a batch" and "the same member trained alone"
follow the same recipe step for step:

- weights: ``arch.init_params(seed, cfg.init_scheme)``, or a given shared start;
- data order: a ``torch.Generator`` seeded with ``data_seed(seed) = seed + 0x9E3779B9`` (the
  offset keeps data-order seeds apart from the weight seeds of a zoo's other members) draws one
  permutation of the member's training rows per epoch; the permutations form one stream that is cut
  into batches of ``batch_size`` rows, so an epoch's last partial batch is completed by the
  first rows of the next epoch (no row is dropped, every batch has the same size, and tasks
  with fewer rows than ``batch_size`` still work);
- loss: mean cross-entropy over the batch (``cross_entropy`` below);
- update: AdamW (decoupled weight decay; plain Adam when ``weight_decay`` is 0) or SGD with
  momentum and L2 weight decay — both elementwise, so stacking members changes nothing.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch

from weightspace.config import option, validate
from weightspace.errors import WeightspaceError
from weightspace.nets.base import INIT_SCHEMES, Architecture
from weightspace.tasks.base import Task

OPTIMIZERS = ("adam", "sgd")

# Data-order seeds are offset from weight seeds so that member s's batch order and member
# s+1's initial weights never come from the same generator stream.
_DATA_SEED_OFFSET = 0x9E3779B9


@dataclass
class TrainConfig:
    optimizer: str = option("adam", "adam (AdamW: decoupled weight decay) or sgd (momentum, L2 weight decay).",
                            choices=OPTIMIZERS)
    lr: float = option(3e-3, "Learning rate; 3e-3 trains the default digits MLP in a few hundred steps.")
    momentum: float = option(0.9, "SGD momentum (ignored by adam).")
    weight_decay: float = option(0.0, "Weight decay: decoupled for adam, added to the gradient for sgd.")
    batch_size: int = option(64, "Examples per step and member; small batches keep zoo members diverse.")
    steps: int = option(1000, "Optimizer steps per member (about 55 epochs of a digits task); measured: 256 digits-rotate tasks reach 0.974 mean test accuracy, 500 steps 0.965.")
    snapshot_every: int = option(0, "Keep a copy of the weights every k steps (and at the end); 0 keeps none.", min=0)
    init_scheme: str = option("uniform", f"Initial weights: {', '.join(INIT_SCHEMES)} (see nets.base).", choices=INIT_SCHEMES)


def check_config(cfg: TrainConfig) -> None:
    """Raise WeightspaceError naming the first unusable training setting."""
    for name in ("lr", "momentum", "weight_decay", "batch_size", "steps", "snapshot_every"):
        value = getattr(cfg, name)
        integral = name in ("batch_size", "steps", "snapshot_every")
        if isinstance(value, bool) or not isinstance(value, numbers.Integral if integral else numbers.Real):
            hint = "a whole number" if integral else "a number with a decimal point, e.g. 0.001 (YAML reads 1e-3 as text)"
            raise WeightspaceError(f"training setting {name}={value!r} is not a number; write {hint}.")
    validate(cfg, where="training config")  # choices and bounds: batch_size >= 1, steps, weight_decay >= 0, ...
    if not cfg.lr > 0 or not 0 <= cfg.momentum < 1:
        raise WeightspaceError(f"training lr must be positive and momentum in [0, 1), got lr={cfg.lr}, momentum={cfg.momentum}.")


def check_task(arch: Architecture, task: Task, seed: int, where: str) -> None:
    """Raise WeightspaceError if ``task`` or ``seed`` cannot train a member of ``arch``."""
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise WeightspaceError(f"{where}: seed {seed!r} is not a non-negative integer.")
    expected = task.input_shape if arch.input_shape is None else tuple(arch.input_shape)
    if task.input_shape != expected:
        raise WeightspaceError(
            f"{where}: task {task.task_id!r} has inputs shaped {task.input_shape}, the {arch.name} expects {expected}."
        )
    for split in ("train", "test"):
        x, y = getattr(task, f"x_{split}"), getattr(task, f"y_{split}")
        if x.dtype != torch.float32 or y.dtype != torch.int64:
            raise WeightspaceError(f"{where}: task {task.task_id!r} {split} data must be float32 inputs and int64 labels.")
        if len(x) != len(y):
            raise WeightspaceError(f"{where}: task {task.task_id!r} has {len(x)} {split} inputs but {len(y)} labels.")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= arch.n_classes):
            raise WeightspaceError(f"{where}: task {task.task_id!r} has {split} labels outside 0..{arch.n_classes - 1}.")
    if len(task.y_train) == 0:
        raise WeightspaceError(f"{where}: task {task.task_id!r} has no training examples.")


def data_seed(seed: int) -> int:
    """Seed of the generator that orders member ``seed``'s training data."""
    return int(seed) + _DATA_SEED_OFFSET


class BatchStream:
    """Row indices of one member's minibatches, drawn from its own seeded generator.

    The stream is a concatenation of per-epoch permutations of ``range(n)``; ``take(k)`` returns
    the next ``k`` batches. Taking 3 then 5 batches gives the same rows as taking 8 at once,
    so trainers may fetch indices in blocks of any size.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size = int(n), int(batch_size)
        self.generator = torch.Generator().manual_seed(data_seed(seed))
        self.pending = torch.empty(0, dtype=torch.int64)

    def take(self, steps: int) -> torch.Tensor:
        need = steps * self.batch_size
        parts, have = [self.pending], len(self.pending)
        while have < need:
            parts.append(torch.randperm(self.n, generator=self.generator))
            have += self.n
        stream = torch.cat(parts)
        self.pending = stream[need:]
        return stream[:need].view(steps, self.batch_size)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy over the last axis; equals ``F.cross_entropy(..., reduction="none")``.

    Written out because on CPU, torch's log_softmax over a 10-class axis is several times slower
    than these few ops, and ``exp`` of arguments below about -87 takes a slow path. Clamping the
    max-shifted logits at -80 changes nothing representable: the max term contributes exp(0) = 1
    and exp(-80) is far below float32 epsilon. The target logit is taken unclamped.
    """
    shifted = logits - logits.detach().amax(-1, keepdim=True)  # the max cancels in the gradient
    log_normalizer = shifted.clamp(min=-80.0).exp().sum(-1).log()
    return log_normalizer - shifted.gather(-1, target.unsqueeze(-1)).squeeze(-1)


def make_optimizer(params: list[torch.Tensor], cfg: TrainConfig) -> torch.optim.Optimizer:
    """The config's optimizer over ``params``; fused kernels (fastest on CPU, elementwise)."""
    if cfg.optimizer == "adam":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=True)
