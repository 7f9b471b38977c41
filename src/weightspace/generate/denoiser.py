"""The network shared by flow matching and diffusion: f(x_t, t, condition) -> vector like x_t.

A residual MLP; time (in [0, 1]) enters through sinusoidal features, the condition through a
linear embedding. A learned *null* embedding replaces the condition where ``drop`` is true: the
unconditional model that classifier-free guidance contrasts with the conditional one.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.emb = nn.Linear(hidden, hidden)  # time + condition (+ token identity), injected in every block
        self.fc1 = nn.Linear(hidden, hidden * 2)
        self.fc2 = nn.Linear(hidden * 2, hidden)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        u = self.norm(h) + self.emb(e)
        return h + self.fc2(nn.functional.silu(self.fc1(nn.functional.silu(u))))


class DenoiserTrunk(nn.Module):
    """What both denoisers (this one and token-flow's) are made of: sinusoidal time features, a
    condition embedding with its learned null, residual blocks, and a zero-initialised output."""

    def _build_trunk(self, dim: int, cond_dim: int, hidden: int, depth: int, time_freqs: int) -> None:
        self.register_buffer("freqs", torch.exp(torch.linspace(0, math.log(1000.0), time_freqs)))
        self.time = nn.Sequential(nn.Linear(2 * time_freqs, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.cond = nn.Linear(max(cond_dim, 1), hidden)
        self.null = nn.Parameter(torch.zeros(hidden))
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(ResidualBlock(hidden) for _ in range(depth))
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)  # start by predicting 0: a calm, stable beginning
        nn.init.zeros_(self.out.bias)

    def _time_and_condition(self, t: torch.Tensor, cond: torch.Tensor, drop: torch.Tensor | None):
        """Embeddings of t (..., per row of x) and of the (B, C) condition, the null one where ``drop``."""
        angles = t[..., None] * self.freqs
        c = self.cond(cond)
        if drop is not None:
            c = torch.where(drop[:, None], self.null.expand_as(c), c)
        return self.time(torch.cat([angles.sin(), angles.cos()], dim=-1)), c

    def _trunk(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.inp(x) + e
        for block in self.blocks:
            h = block(h, e)
        return self.out(nn.functional.silu(h))


class ConditionalDenoiser(DenoiserTrunk):
    def __init__(self, dim: int, cond_dim: int, hidden: int = 256, depth: int = 3, time_freqs: int = 16):
        super().__init__()
        self._build_trunk(dim, cond_dim, hidden, depth, time_freqs)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        e, c = self._time_and_condition(t, cond, drop)  # t: (B,)
        return self._trunk(x, e + c)


def guided(net: nn.Module, scale: float, x: torch.Tensor, t: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
    """``net(x, t, *inputs)`` (the condition last) with classifier-free guidance: u + s (c - u), from
    one batch holding the conditional and the null-condition rows; s = 1 is the conditional model."""
    if scale == 1.0:
        return net(x, t, *inputs)
    *shared, cond = inputs  # shared inputs (token indices) are the same for both halves
    n = len(x)
    both = net(torch.cat([x, x]), torch.cat([t, t]), *shared, torch.cat([cond, cond]),
               drop=torch.cat([torch.zeros(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)]))
    conditional, unconditional = both.chunk(2)
    return unconditional + scale * (conditional - unconditional)
