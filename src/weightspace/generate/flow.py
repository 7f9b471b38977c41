"""flow: conditional flow matching in a whitened weight latent (Lipman et al. 2023).

Training: x0 ~ N(0, I), x1 = a zoo member's latent, t ~ U(0, 1), x_t = (1 - t) x0 + t x1;
the network regresses the straight-line velocity x1 - x0 at (x_t, t, condition).
Sampling integrates dx/dt = v(x, t, c) from t = 0 to 1 with a fixed number of Euler or
midpoint steps; ``deterministic=True`` starts from x0 = 0, the noise distribution's mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weightspace.config import option
from weightspace.generate.latent_model import LatentDenoisingGenerator, LatentModelConfig
from weightspace.generate.registry import register


@dataclass
class FlowConfig(LatentModelConfig):
    solver: str = option("midpoint", "euler (1 network call per step) or midpoint (2 calls, second order)",
                         choices=("euler", "midpoint"))


@register("flow", pretty="latent flow matching",
          paper="Flow Matching for Generative Modeling (Lipman et al. 2023); classifier-free guidance (Ho & Salimans 2022)")
class FlowGenerator(LatentDenoisingGenerator):
    Config = FlowConfig

    def training_loss(self, x1, cond, drop, g, rows=slice(None)):
        x0 = torch.randn(x1.shape, generator=g)
        t = torch.rand(len(x1), generator=g)
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        return ((self.net(xt[rows], t[rows], cond[rows], drop[rows]) - (x1 - x0)[rows]) ** 2).mean()

    def _sample_latent(self, cond, g, deterministic):
        shape = (len(cond), self.codec.dim)
        x = torch.zeros(shape) if deterministic else torch.randn(shape, generator=g)
        return integrate(lambda x, t: self.guided(x, t, cond), x, self.config.sample_steps, self.config.solver)


def integrate(velocity, x: torch.Tensor, steps: int, solver: str) -> torch.Tensor:
    """x at t = 1 from x at t = 0 along dx/dt = velocity(x, t) in ``steps`` euler or midpoint steps;
    t is given per row of x (every axis but the last)."""
    dt = 1.0 / steps
    for i in range(steps):
        t = torch.full(x.shape[:-1], i * dt)
        if solver == "euler":
            x = x + dt * velocity(x, t)
        else:
            x_mid = x + 0.5 * dt * velocity(x, t)
            x = x + dt * velocity(x_mid, t + 0.5 * dt)
    return x
