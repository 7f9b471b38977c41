"""FLOP counts of small members and the machine's dense matmul rate, for GFLOP/s lines.

Counts come from ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions,
2 FLOPs per multiply-add) run on the real module, forward and backward, so they follow the
architecture exactly; elementwise work (activations, loss, optimizer) is not counted.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from weightspace.nets.base import Architecture
from weightspace.zoo.recipe import cross_entropy


def train_step_flops(arch: Architecture, batch: int) -> int:
    """Matmul/conv FLOPs of one member's training step (forward + backward) on ``batch`` rows."""
    model = arch.module()
    x = torch.zeros(batch, *arch.input_shape)
    y = torch.zeros(batch, dtype=torch.int64)
    with FlopCounterMode(display=False) as counter:
        cross_entropy(model(x), y).mean().backward()
    return int(counter.get_total_flops())


def forward_flops(arch: Architecture, examples: int) -> int:
    """Matmul/conv FLOPs of evaluating one member on ``examples`` rows."""
    model = arch.module()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *arch.input_shape))
    return int(counter.get_total_flops()) * examples


def matmul_gflops(threads: int, size: int = 1024, repeats: int = 7) -> float:
    """Median GFLOP/s of a size x size float32 matmul using ``threads`` torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b  # warm up the BLAS thread pool
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(4):
                a @ b
            rates.append(4 * 2 * size**3 / (time.perf_counter() - start) / 1e9)
        return statistics.median(rates)
    finally:
        torch.set_num_threads(before)
