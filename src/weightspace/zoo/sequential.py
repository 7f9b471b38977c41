"""One model at a time: a plain ``nn.Module`` and ``torch.optim`` loop.

This is the baseline the batched trainer is measured against, so it is kept as fast as a
careful user would write it: same recipe (``zoo.recipe``), fused optimizer, rows gathered with
``index_select``, no per-step Python work beyond the loop itself. Member ``i`` of
``train_members(arch, tasks, seeds, cfg)`` equals ``train_single(arch, tasks[i], seeds[i], cfg)``
to float tolerance.
"""

from __future__ import annotations

import torch

from weightspace.nets.base import Architecture, load_module
from weightspace.tasks.base import Task
from weightspace.zoo.recipe import BatchStream, TrainConfig, check_config, check_task, cross_entropy, make_optimizer

INDEX_BLOCK = 64  # batches of indices fetched at a time (the stream does not depend on it)


def train_single(arch: Architecture, task: Task, seed: int, cfg: TrainConfig,
                 init: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Train one member; return its final weights (spec names) and train/test accuracy and loss."""
    check_config(cfg)
    check_task(arch, task, seed, where="train_single")
    start = arch.init_params(seed, cfg.init_scheme) if init is None else init
    model = load_module(arch, start)
    optimizer = make_optimizer(list(model.parameters()), cfg)
    stream = BatchStream(len(task.y_train), cfg.batch_size, seed)
    x, y = task.x_train, task.y_train
    for block_start in range(0, cfg.steps, INDEX_BLOCK):
        for rows in stream.take(min(INDEX_BLOCK, cfg.steps - block_start)):
            loss = cross_entropy(model(x.index_select(0, rows)), y.index_select(0, rows)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    final = {name: value.detach().clone() for name, value in model.state_dict().items()}
    train_acc, train_loss = evaluate_module(model, task.x_train, task.y_train)
    test_acc, test_loss = evaluate_module(model, task.x_test, task.y_test)
    metrics = {"train_acc": train_acc, "test_acc": test_acc, "train_loss": train_loss, "test_loss": test_loss}
    return final, metrics


@torch.no_grad()
def evaluate_module(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2048) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of one model on (x, y); NaN for an empty set."""
    if len(y) == 0:
        return float("nan"), float("nan")
    correct, total_loss = 0, 0.0
    for a in range(0, len(y), batch):
        logits = model(x[a:a + batch])
        correct += int((logits.argmax(-1) == y[a:a + batch]).sum())
        total_loss += float(cross_entropy(logits, y[a:a + batch]).sum())
    return correct / len(y), total_loss / len(y)
