"""What flow matching and diffusion share: a whitened latent, a conditional denoiser network,
its training loop with condition dropout, and classifier-free guidance.

Subclasses supply the per-batch ``training_loss`` and the sampling loop (``_sample_latent``).

The loop is data-parallel under torchrun (weightspace.distributed): every process draws the
whole batch (members, noise, timesteps) from the same seeded generator and computes the loss on
its ``rows`` of it; gradients are averaged over the processes, so N processes take the steps one
process takes with the same ``batch_size``. Without torchrun, ``rows`` is the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weightspace.config import option
from weightspace.generate.data_parallel import DataParallel
from weightspace.encode.codec import WeightCodec
from weightspace.encode.modules import seeded
from weightspace.errors import WeightspaceError
from weightspace.generate.base import Generator, ZooData
from weightspace.generate.conditions import ConditionSource
from weightspace.generate.denoiser import ConditionalDenoiser, guided
from weightspace.training_loop import adamw_cosine, train


@dataclass
class LatentModelConfig:
    latent: str = option("pca", "pca (whitened principal coefficients) or ae (p-diff style autoencoder)", choices=("pca", "ae"))
    # Measured on digits-rotate: with 256 members, the 248 components of 99.99% variance leave
    # too many whitened axes to learn from 256 points (flow: 0.67 of reference accuracy); 64
    # components keep 99.9% of the accuracy of the zoo's own weights.
    k: int = option(64, "latent size (pca: capped by the zoo's rank; 0 = as many components as `variance` needs)")
    variance: float = option(0.9999, "fraction of the zoo's weight variance the PCA keeps when k = 0")
    ae_steps: int = option(2000, "autoencoder training steps (latent=ae)")
    hidden: int = option(256, "width of the denoiser network")
    depth: int = option(3, "residual blocks of the denoiser network")
    steps: int = option(4000, "training steps")
    lr: float = option(1e-3, "AdamW learning rate (cosine decay to 0)")
    batch_size: int = option(64, "zoo members per step")
    cond_dropout: float = option(0.1, "probability of training on the null condition (enables guidance)")
    guidance: float = option(1.0, "classifier-free guidance scale at sampling; 1 = plain conditional model")
    sample_steps: int = option(20, "solver steps when sampling")
    resample_support: bool = option(True, "draw fresh support sets from each zoo task's training data every step")
    support_draws: int = option(16, "pre-encoded support draws per member for training-free encoders")
    seed: int = option(0, "seed of initialisation, batches, noise and support draws")


class LatentDenoisingGenerator(Generator):
    data_parallel = True  # the training loop shares each batch over torchrun processes

    def training_loss(self, x1: torch.Tensor, cond: torch.Tensor, drop: torch.Tensor, g: torch.Generator,
                      rows: slice = slice(None)) -> torch.Tensor:
        """Mean loss over ``rows`` of the batch; the noise is drawn for the whole batch (see above)."""
        raise NotImplementedError

    def _fit(self, zoo: ZooData, progress=None) -> None:
        c = self.config
        self.codec = WeightCodec.fit(zoo.spec, zoo.params, latent=c.latent, k=c.k or None,
                                     variance=None if c.k or c.latent == "ae" else c.variance,
                                     whiten=True, ae_steps=c.ae_steps, seed=c.seed)
        x1_all = self.codec.encode(zoo.params)
        self._build(zoo.encoder.dim if zoo.encoder else zoo.conditions.shape[1], self.codec.dim)
        source = ConditionSource(zoo, c.resample_support, c.support_draws, c.seed)
        params = list(self.net.parameters()) + source.parameters()
        par = DataParallel.current()  # rank 0 of 1 unless launched by torchrun
        if c.batch_size < par.world:
            raise WeightspaceError(f"{self.name}: batch_size {c.batch_size} is smaller than the {par.world} processes.")
        par.broadcast(params)
        state = adamw_cosine(params, c.lr, c.steps, 1e-4, c.seed)
        g = state.generator

        def denoising(step: int) -> tuple[torch.Tensor, float]:
            members = torch.randint(0, len(zoo), (c.batch_size,), generator=g)
            drop = torch.rand(len(members), generator=g) < c.cond_dropout
            rows = par.rows(len(members))
            loss = self.training_loss(x1_all[members], source(members, g), drop, g, rows)
            return loss, (rows.stop - rows.start) / len(members)

        self.net.train()
        source.train(True)
        value = train(state, denoising, c.steps, clip=1.0, checkpoint=self.checkpoint, parallel=par,
                      progress=progress, progress_loss=True).loss
        self.net.eval()
        source.train(False)
        self.fit_info.update({"final_loss": value, "processes": par.world})

    def _build(self, cond_dim: int, dim: int) -> None:
        with seeded(self.config.seed):
            self.net = ConditionalDenoiser(dim, cond_dim, self.config.hidden, self.config.depth)

    def guided(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Network output with classifier-free guidance (denoiser.guided)."""
        return guided(self.net, self.config.guidance, x, t, cond)

    def _model_state(self):
        return {f"net.{k}": v for k, v in self.net.state_dict().items()}

    def _load_model_state(self, state):
        self._build(state["net.cond.weight"].shape[1], self.codec.dim)
        self.net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")}, strict=True)
        self.net.eval()
