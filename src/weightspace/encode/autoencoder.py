"""A small MLP autoencoder latent over normalised flat weights (p-diff style).

Following p-diff (Wang et al. 2024), noise is added to the input weights and to the latent
while training so that the decoder maps a neighbourhood of each zoo latent to working weights;
generated latents are never exactly on the training codes. After training, latents are
standardised per axis over the zoo so a diffusion or flow model sees unit-variance data.
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

from weightspace.encode.modules import mlp, seeded
from weightspace.errors import WeightspaceError
from weightspace.training_loop import adamw_cosine, train


class AELatent(nn.Module):
    def __init__(self, in_dim: int, dim: int = 32, hidden: int = 256):
        super().__init__()
        self.in_dim, self.dim, self.hidden = int(in_dim), int(dim), int(hidden)
        self.encoder = mlp([self.in_dim, self.hidden, self.hidden, self.dim])
        self.decoder = mlp([self.dim, self.hidden, self.hidden, self.in_dim])
        self.register_buffer("z_mean", torch.zeros(self.dim))
        self.register_buffer("z_std", torch.ones(self.dim))

    @classmethod
    def fit(cls, flat: torch.Tensor, dim: int = 32, hidden: int = 256, steps: int = 2000, lr: float = 1e-3,
            batch_size: int = 64, input_noise: float = 0.001, latent_noise: float = 0.1, seed: int = 0,
            progress: Callable[[int, int], None] | None = None) -> "AELatent":
        if flat.dim() != 2 or flat.shape[0] < 2:
            raise WeightspaceError(f"the autoencoder needs an (M, D) matrix of at least 2 members, got {tuple(flat.shape)}.")
        with seeded(seed):
            ae = cls(flat.shape[1], dim, hidden)
        state = adamw_cosine(list(ae.parameters()), lr, steps, 1e-4, seed)

        def reconstruction(step: int) -> torch.Tensor:
            idx = torch.randint(0, flat.shape[0], (min(batch_size, flat.shape[0]),), generator=state.generator)
            x = flat[idx]
            z = ae.encoder(x + input_noise * torch.randn(x.shape, generator=state.generator))
            recon = ae.decoder(z + latent_noise * torch.randn(z.shape, generator=state.generator))
            return ((recon - x) ** 2).mean()

        train(state, reconstruction, steps, progress=progress)
        with torch.no_grad():
            z = ae.encoder(flat)
            ae.z_mean.copy_(z.mean(0))
            ae.z_std.copy_(z.std(0).clamp_min(1e-6))
        ae.eval()
        return ae

    def encode(self, flat: torch.Tensor) -> torch.Tensor:
        """Standardised latent of normalised flat weights."""
        return (self.encoder(flat) - self.z_mean) / self.z_std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] != self.dim:
            raise WeightspaceError(f"latent has {z.shape[-1]} entries, the autoencoder latent has {self.dim}.")
        return self.decoder(z * self.z_std + self.z_mean)

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.state_dict().items()}

    def config(self) -> dict:
        return {"type": "ae", "in_dim": self.in_dim, "dim": self.dim, "hidden": self.hidden}

    @classmethod
    def from_state(cls, config: Mapping, state: Mapping[str, torch.Tensor]) -> "AELatent":
        ae = cls(int(config["in_dim"]), int(config["dim"]), int(config["hidden"]))
        ae.load_state_dict(dict(state), strict=True)
        ae.eval()
        return ae
