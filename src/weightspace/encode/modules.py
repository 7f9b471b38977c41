"""Small building blocks shared by latents, condition encoders and generator networks."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


def mlp(sizes: list[int], act: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """Linear layers with an activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed the RNG that nn.Module constructors read, without touching the caller's global state.

    nn.Linear draws its initial weights from the global generator; forking it keeps module
    construction reproducible by seed and leaves the caller's random stream unchanged.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
