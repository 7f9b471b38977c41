"""A multi-task network: the non-generative way to use a zoo's tasks.

One network is trained jointly on the training data of every zoo task and is told which task it
is solving by that task's condition vector c (the descriptor features, or a support-set code).
Its body is shared by all tasks; its output layer is linear in the condition,

    head(c) = head_0 + sum_j c_j head_j          (weight and bias alike),

so for any fixed c it is an ordinary network of the zoo's own architecture: ``weights_for(c)``
materializes that network, and the harness scores it exactly like a generated one (accuracy,
novelty, cost). For class-subset tasks with the indicator of S as condition, this is the
composition a 10-way classifier would give (the logit of "in S" is a sum of per-class parts),
learned from the binary tasks themselves: no per-class labels are needed.

Training starts from the zoo's shared pretrained start when there is one (the members' own
start, with the extra head_j at zero), else from the architecture's init, and uses the zoo's
recipe (optimizer, learning rate, batch size per task).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture
from weightspace.tasks.base import Task
from weightspace.training_loop import adamw_cosine, train

Weights = dict[str, torch.Tensor]


@dataclass
class MultitaskNetwork:
    arch: Architecture
    shared: Weights  # every tensor but the output layer
    head_base: Weights  # output weight and bias at c = 0
    head_coef: Weights  # (C, *shape) per condition feature
    seconds: float = 0.0  # training wall time

    def weights_for(self, cond: torch.Tensor) -> Weights:
        """The network of the zoo's architecture that the multi-task net is for condition ``cond``."""
        c = cond.to(torch.float32).reshape(-1)
        head = {n: self.head_base[n] + torch.tensordot(c, self.head_coef[n], dims=1) for n in self.head_base}
        return {n: (head[n] if n in head else self.shared[n]).detach().clone() for n in self.arch.spec().names}


def head_names(arch: Architecture) -> tuple[str, str]:
    """The output layer's weight and bias: the spec's last two tensors, checked to be a head."""
    tensors, n_classes = arch.spec().tensors, arch.n_classes
    if len(tensors) < 2 or tensors[-1].shape != (n_classes,) or tensors[-2].shape[0] != n_classes:
        raise WeightspaceError(f"the {arch.name} architecture has no plain output layer for a multi-task head.")
    return tensors[-2].name, tensors[-1].name


def fit_multitask(arch: Architecture, tasks: Sequence[Task], conds: torch.Tensor, init: Mapping[str, torch.Tensor],
                  steps: int = 2000, lr: float = 3e-3, batch_size: int = 64, batch_tasks: int = 32,
                  weight_decay: float = 0.0, seed: int = 0) -> MultitaskNetwork:
    """Train jointly on ``tasks`` (their training data), task i conditioned on ``conds[i]``."""
    if len(tasks) != len(conds) or not tasks:
        raise WeightspaceError("a multi-task network needs one condition per zoo task and at least one task.")
    began = time.perf_counter()
    module = arch.module()
    heads = head_names(arch)
    conds = conds.to(torch.float32)
    shared = {n: nn.Parameter(init[n].detach().clone().float()) for n in arch.spec().names if n not in heads}
    head_base = {n: nn.Parameter(init[n].detach().clone().float()) for n in heads}
    head_coef = {n: nn.Parameter(torch.zeros(conds.shape[1], *init[n].shape)) for n in heads}
    state = adamw_cosine([*shared.values(), *head_base.values(), *head_coef.values()], lr, steps, weight_decay, seed)
    g = state.generator

    def loss_of(params: Weights, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(functional_call(module, params, (x,)), y)

    def batched_loss(c: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        head = {n: head_base[n] + torch.tensordot(c, head_coef[n], dims=1) for n in heads}
        return loss_of({**shared, **head}, x, y)

    per_task = vmap(batched_loss, in_dims=(0, 0, 0))

    def joint(step: int) -> torch.Tensor:
        pick = torch.randperm(len(tasks), generator=g)[: min(batch_tasks, len(tasks))]
        xs, ys = [], []
        for i in pick.tolist():
            rows = torch.randint(len(tasks[i].y_train), (batch_size,), generator=g)
            xs.append(tasks[i].x_train[rows])
            ys.append(tasks[i].y_train[rows])
        return per_task(conds[pick], torch.stack(xs), torch.stack(ys)).mean()

    train(state, joint, steps)
    detach = lambda d: {n: p.detach() for n, p in d.items()}  # noqa: E731
    return MultitaskNetwork(arch, detach(shared), detach(head_base), detach(head_coef), time.perf_counter() - began)
