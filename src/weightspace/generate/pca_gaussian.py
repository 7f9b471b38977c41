"""pca-gaussian: a linear-Gaussian model of weights in a PCA space.

z = W [c; 1] + e,  e ~ N(0, S): ridge regression from the condition c to the PCA coefficients
z of the zoo's (normalised) weights, and a full Gaussian on the residuals. Sampling draws
mean + noise; ``deterministic=True`` returns the mean. Closed form: fitting takes
milliseconds, which makes it the baseline every trained generator has to beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weightspace.config import option
from weightspace.encode.codec import WeightCodec
from weightspace.generate.base import Generator, ZooData
from weightspace.generate.conditions import ConditionSource
from weightspace.generate.registry import register


@dataclass
class PCAGaussianConfig:
    k: int = option(0, "PCA components; 0 = as many as `variance` needs")
    variance: float = option(0.9999, "fraction of the zoo's weight variance the PCA keeps when k = 0")
    ridge: float = option(1e-3, "ridge penalty of the condition -> coefficient regression (per row of data)")
    resample_support: bool = option(True, "also fit on fresh support-set draws of each zoo task (robust to the user's set)")
    support_draws: int = option(16, "fresh support-set draws per zoo task when resample_support is on")
    noise_scale: float = option(1.0, "multiplies the residual noise when sampling (0 = always the mean)")
    seed: int = option(0, "seed of the support-set draws")


@register("pca-gaussian", pretty="PCA Gaussian regression",
          paper="Linear-Gaussian regression in a PCA basis (Bishop 2006, PRML §12.2); "
                "the PCA-Gaussian baseline of Schürholt et al. 2022")
class PCAGaussianGenerator(Generator):
    Config = PCAGaussianConfig
    trains_encoder = False

    def _fit(self, zoo: ZooData, progress=None) -> None:
        c = self.config
        self.codec = WeightCodec.fit(zoo.spec, zoo.params, latent="pca", k=c.k or None,
                                     variance=None if c.k else c.variance)
        z_members = self.codec.encode(zoo.params)
        source = ConditionSource(zoo, resample=c.resample_support, draws=c.support_draws, seed=c.seed)
        members, cond = source.all_draws()
        a = torch.cat([cond, torch.ones(len(cond), 1)], dim=1).double()
        z = z_members[members].double()
        penalty = c.ridge * len(a) * torch.eye(a.shape[1], dtype=torch.float64)
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        self.weight = torch.linalg.solve(a.T @ a + penalty, a.T @ z).float()  # (C + 1, k)
        resid = (z - a @ self.weight.double())
        cov = resid.T @ resid / len(resid)
        jitter = 1e-6 * cov.diagonal().mean().clamp_min(1e-12)
        self.chol = torch.linalg.cholesky(cov + jitter * torch.eye(cov.shape[0], dtype=torch.float64)).float()
        self.fit_info["residual_rms"] = float(resid.pow(2).mean().sqrt())
        if progress:
            progress(1, 1)

    def _sample_latent(self, cond, g, deterministic):
        mean = torch.cat([cond, torch.ones(len(cond), 1)], dim=1) @ self.weight
        if deterministic or self.config.noise_scale == 0:
            return mean
        eps = torch.randn(mean.shape, generator=g)
        return mean + self.config.noise_scale * eps @ self.chol.T

    def _model_state(self):
        return {"weight": self.weight, "chol": self.chol}

    def _load_model_state(self, state):
        self.weight, self.chol = state["weight"], state["chol"]
