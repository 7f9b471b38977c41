"""The zoo tasks' training data, for end-to-end training and for fresh support-set draws.

A generator conditioned on a support set must not learn the zoo's one fixed support set per
task by heart: a user brings a different set. ``TaskBank.support`` draws a new class-balanced
support set from each task's training data (without replacement, same size as the zoo's
support sets); ``minibatch`` draws training examples for the task loss. Both are vectorised
over a batch of members and seeded by a torch.Generator.

Tasks that share one input tensor (a class-subset family relabels the same images for every
task) share it here too: only their labels are stored per task, so a bank of every task in a
family's allowed space costs its labels, not a copy of the images per task.
"""

from __future__ import annotations

from typing import Sequence

import torch

from weightspace.encode.condition import unique_tasks
from weightspace.errors import WeightspaceError
from weightspace.tasks.base import Task


class TaskBank:
    def __init__(self, tasks: Sequence[Task], support_size: int | None = None):
        if not tasks:
            raise WeightspaceError("end-to-end training needs the zoo's tasks, and none were given.")
        utasks = unique_tasks(tasks)
        index = {t.task_id: i for i, t in enumerate(utasks)}
        self.member_task = torch.tensor([index[t.task_id] for t in tasks])
        self.n_classes = utasks[0].n_classes
        self.input_shape = tuple(utasks[0].x_train.shape[1:])
        self.n = torch.tensor([len(t.y_train) for t in utasks])
        nmax = int(self.n.max())
        first = utasks[0].x_train
        self.shared_x = all(t.x_train.data_ptr() == first.data_ptr() and t.x_train.shape == first.shape for t in utasks)
        # the tasks' own input tensors, not a padded copy: a pool of hundreds of text tasks holds
        # gigabytes of cached activations, and a second copy would double them
        self.x = [first.float()] if self.shared_x else [t.x_train.float() for t in utasks]
        self.y = torch.full((len(utasks), nmax), self.n_classes, dtype=torch.long)  # padding = class C
        for i, t in enumerate(utasks):
            self.y[i, : len(t.y_train)] = t.y_train.long()
        counts = torch.stack([torch.bincount(row, minlength=self.n_classes + 1) for row in self.y])
        # class_start[u, c]: where class c begins when task u's examples are sorted by class
        self.class_start = torch.cat([torch.zeros(len(utasks), 1, dtype=torch.long), counts.cumsum(1)[:, :-1]], dim=1)
        default = int(torch.tensor([len(t.support_y) for t in utasks]).median())
        self.support_size = min(int(support_size or default), int(self.n.min()))

    def minibatch(self, members: torch.Tensor, size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, size, *input), y (B, size): training examples of each member's task, with replacement."""
        u = self.member_task[members]
        idx = (torch.rand(len(u), size, generator=g) * self.n[u, None]).long()
        return self._inputs(u, idx), self.y[u[:, None], idx]

    def __len__(self) -> int:
        return len(self.n)

    def _inputs(self, u: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if self.shared_x:
            return self.x[0][idx]
        return torch.stack([self.x[k][rows] for k, rows in zip(u.tolist(), idx)])

    def support(self, members: torch.Tensor, g: torch.Generator, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh class-balanced support set per member: x (B, S, *input), y (B, S)."""
        size = size or self.support_size
        u = self.member_task[members]
        y = self.y[u]
        r = torch.rand(y.shape, generator=g)
        order = (y.float() + r).argsort(dim=1)  # by class, random within a class
        y_sorted = y.gather(1, order)
        rank = torch.arange(y.shape[1]) - self.class_start[u].gather(1, y_sorted)  # rank within class
        # Taking the smallest ranks takes every class's 1st example, then every 2nd, ...: balanced.
        score = rank + r.gather(1, order)
        score[y_sorted == self.n_classes] = float("inf")
        pick = order.gather(1, score.topk(size, dim=1, largest=False).indices)
        return self._inputs(u, pick), y.gather(1, pick)
