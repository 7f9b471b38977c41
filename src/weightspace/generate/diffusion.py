"""diffusion: latent DDPM trained to predict noise, sampled with DDIM (p-diff, Wang et al. 2024).

Training (Ho et al. 2020): pick a timestep t of T, noise a zoo latent x0 to
x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, regress eps from (x_t, t, condition).
Sampling (Song et al. 2021, DDIM): walk a fixed subsequence of timesteps down to 0, each step
predicting x0 from eps and moving to the previous timestep; ``eta`` = 0 is deterministic given
the starting noise, 1 recovers DDPM's noise. ``deterministic=True`` starts from x_T = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weightspace.config import option
from weightspace.generate.latent_model import LatentDenoisingGenerator, LatentModelConfig
from weightspace.generate.registry import register


@dataclass
class DiffusionConfig(LatentModelConfig):
    sample_steps: int = option(50, "DDIM steps when sampling")
    train_timesteps: int = option(1000, "number of noise levels T of the DDPM")
    beta_start: float = option(1e-4, "noise variance added at the first timestep (linear schedule)")
    beta_end: float = option(0.02, "noise variance added at the last timestep")
    eta: float = option(0.0, "DDIM stochasticity: 0 = deterministic given the start noise, 1 = DDPM")


@register("diffusion", pretty="latent diffusion (p-diff)",
          paper="p-diff: Neural Network Diffusion (Wang et al. 2024); DDPM (Ho et al. 2020); DDIM sampling (Song et al. 2021)")
class DiffusionGenerator(LatentDenoisingGenerator):
    Config = DiffusionConfig

    def alphas_cumprod(self) -> torch.Tensor:
        c = self.config
        betas = torch.linspace(c.beta_start, c.beta_end, c.train_timesteps, dtype=torch.float64)
        return torch.cumprod(1 - betas, dim=0).float()

    def training_loss(self, x1, cond, drop, g, rows=slice(None)):
        abar = self.alphas_cumprod()
        t = torch.randint(0, len(abar), (len(x1),), generator=g)
        eps = torch.randn(x1.shape, generator=g)
        a = abar[t][:, None]
        xt = a.sqrt() * x1 + (1 - a).sqrt() * eps
        return ((self.net(xt[rows], t[rows].float() / len(abar), cond[rows], drop[rows]) - eps[rows]) ** 2).mean()

    def _sample_latent(self, cond, g, deterministic):
        abar = self.alphas_cumprod()
        T = len(abar)
        timesteps = torch.linspace(T - 1, 0, self.config.sample_steps).round().long().unique_consecutive()
        shape = (len(cond), self.codec.dim)
        x = torch.zeros(shape) if deterministic else torch.randn(shape, generator=g)
        eta = 0.0 if deterministic else self.config.eta
        for i, t in enumerate(timesteps):
            a_t = abar[t]
            a_prev = abar[timesteps[i + 1]] if i + 1 < len(timesteps) else torch.tensor(1.0)
            eps = self.guided(x, torch.full((len(x),), float(t) / T), cond)
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
            direction = (1 - a_prev - sigma**2).clamp_min(0).sqrt() * eps
            x = a_prev.sqrt() * x0 + direction
            if eta > 0:
                x = x + sigma * torch.randn(shape, generator=g)
        return x
