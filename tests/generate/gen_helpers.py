"""A tiny synthetic task family and a zoo trained on it in about a second (shared init).

Task "a=θ": 6-d Gaussian inputs, 3 classes, label = argmax of fixed class directions applied
to the input rotated by θ in its first two coordinates. Nearby angles need nearby weights,
so a generator has something real to learn; a net trained on one angle is poor on a far one.
"""

from __future__ import annotations

import math

import torch

from weightspace.encode.functional import members_loss
from weightspace.nets import MLP
from weightspace.tasks.base import Task

ARCH = MLP(input_shape=(6,), n_classes=3, hidden=(8,))
_CENTRES = torch.tensor([[1.0, 0.0, 0.3, 0.0, 0.0, 0.0], [-0.5, 0.87, 0.0, 0.3, 0.0, 0.0], [-0.5, -0.87, 0.0, 0.0, 0.3, 0.0]])
ZOO_ANGLES = [i * 90.0 / 16 for i in range(16)]
HELDOUT_ANGLES = [a + 90.0 / 32 for a in ZOO_ANGLES[3:15:3]]


def make_task(angle: float, n_train: int = 240, n_support: int = 30) -> Task:
    g = torch.Generator().manual_seed(int(angle * 1000) + 7)
    x = torch.randn(n_train + 200, 6, generator=g)
    r = math.radians(angle)
    rot = torch.eye(6)
    rot[:2, :2] = torch.tensor([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
    y = (x @ rot.T @ _CENTRES.T).argmax(1)
    xt, yt = x[:n_train], y[:n_train]
    return Task(f"a={angle:.2f}", "synthetic", (angle,), f"rotated by {angle}", xt, yt, x[n_train:], y[n_train:],
                xt[:n_support], yt[:n_support], 3)


def train(tasks: list[Task], steps: int = 200, seed: int = 0, shared: bool = True) -> dict[str, torch.Tensor]:
    """Full-batch Adam on every task at once (vmapped), from one shared or per-member inits."""
    seeds = [seed] * len(tasks) if shared else [seed + i for i in range(len(tasks))]
    params = {k: v.clone().requires_grad_(True) for k, v in ARCH.init_params_stacked(seeds).items()}
    opt = torch.optim.Adam(params.values(), lr=0.05)
    x = torch.stack([t.x_train for t in tasks])
    y = torch.stack([t.y_train for t in tasks])
    module = ARCH.module()
    for _ in range(steps):
        ce, _ = members_loss(module, params, x, y, per_member=True)
        opt.zero_grad()
        ce.mean(1).sum().backward()
        opt.step()
    return {k: v.detach() for k, v in params.items()}


_CACHE: dict = {}


def tiny_zoo(shared: bool = True):
    """(params, zoo tasks, held-out tasks), cached for the test session."""
    if shared not in _CACHE:
        tasks = [make_task(a) for a in ZOO_ANGLES]
        _CACHE[shared] = (train(tasks, shared=shared), tasks, [make_task(a) for a in HELDOUT_ANGLES])
    return _CACHE[shared]


def accuracy(params: dict[str, torch.Tensor], task: Task) -> torch.Tensor:
    _, correct = members_loss(ARCH.module(), params, task.x_test, task.y_test)
    return correct.float().mean(1)
