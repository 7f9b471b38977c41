"""WeightCodec: stacked weights <-> latent vectors, the space every generator works in.

weights --(per-tensor normalisation)--> flat (M, D) --(latent: pca | ae | lowrank | none)--> (M, k)

``decode`` is differentiable (end-to-end training backpropagates through it); ``decode_checked``
additionally validates against the WeightSpec, so whatever leaves a generator is a state dict
of the right names and shapes with finite values.
"""

from __future__ import annotations

from typing import Mapping

import torch

from weightspace.encode.autoencoder import AELatent
from weightspace.encode.lowrank import LowRankLatent
from weightspace.encode.normalize import TensorNormalizer
from weightspace.encode.pca import PCALatent
from weightspace.errors import WeightspaceError
from weightspace.spec import WeightSpec

LATENTS = ("pca", "ae", "lowrank", "none")


class WeightCodec:
    def __init__(self, spec: WeightSpec, normalizer: TensorNormalizer, latent: PCALatent | AELatent | LowRankLatent | None):
        self.spec = spec
        self.normalizer = normalizer
        self.latent = latent

    @classmethod
    def fit(cls, spec: WeightSpec, stacked: Mapping[str, torch.Tensor], latent: str = "pca", k: int | None = None,
            variance: float | None = None, whiten: bool = False, ae_steps: int = 2000, ae_hidden: int = 256,
            seed: int = 0, progress=None) -> "WeightCodec":
        if latent not in LATENTS:
            raise WeightspaceError(f"unknown latent {latent!r}; choose one of {', '.join(LATENTS)}.")
        normalizer = TensorNormalizer.fit(spec, stacked)
        flat = normalizer.to_flat(stacked)
        if latent == "pca":
            lat = PCALatent.fit(flat, k=k, variance=variance, whiten=whiten)
        elif latent == "ae":
            lat = AELatent.fit(flat, dim=k or 32, hidden=ae_hidden, steps=ae_steps, seed=seed, progress=progress)
        elif latent == "lowrank":  # k is the rank of each layer's delta
            lat = LowRankLatent.fit(spec, flat, rank=k or 8)
        else:
            lat = None
        return cls(spec, normalizer, lat)

    @property
    def dim(self) -> int:
        return self.spec.numel if self.latent is None else self.latent.dim

    def encode(self, stacked: Mapping[str, torch.Tensor]) -> torch.Tensor:
        flat = self.normalizer.to_flat(stacked)
        if self.latent is None:
            return flat
        with torch.no_grad():
            return self.latent.encode(flat)

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Stacked weights from (n, k) latents (differentiable)."""
        if isinstance(self.latent, LowRankLatent):  # straight to tensors: linear in the weights, no flat copy
            return self.latent.decode_weights(z, self.normalizer)
        flat = z if self.latent is None else self.latent.decode(z)
        return self.normalizer.from_flat(flat)

    def decode_checked(self, z: torch.Tensor, where: str = "generated weights") -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self.checked(self.decode(z), where)

    def checked(self, params: dict[str, torch.Tensor], where: str = "generated weights") -> dict[str, torch.Tensor]:
        """Stacked weights made contiguous and validated against the spec (names, shapes, finiteness)."""
        params = {k: v.contiguous() for k, v in params.items()}
        self.spec.validate(params, stacked=True, where=where)
        return params

    # ----- persistence -----------------------------------------------------------------------
    def config(self) -> dict:
        return {"latent": {"type": "none"} if self.latent is None else self.latent.config()}

    def state(self) -> dict[str, torch.Tensor]:
        out = {f"norm.{k}": v for k, v in self.normalizer.state().items()}
        if self.latent is not None:
            out.update({f"latent.{k}": v for k, v in self.latent.state().items()})
        return out

    @classmethod
    def from_state(cls, spec: WeightSpec, config: Mapping, state: Mapping[str, torch.Tensor]) -> "WeightCodec":
        norm = TensorNormalizer.from_state(spec, substate(state, "norm."))
        lat_cfg, lat_state = config["latent"], substate(state, "latent.")
        kind = lat_cfg["type"]
        if kind in ("pca", "ae"):
            lat = {"pca": PCALatent, "ae": AELatent}[kind].from_state(lat_cfg, lat_state)
        elif kind == "lowrank":
            lat = LowRankLatent.from_state(spec, lat_cfg, lat_state)
        elif kind == "none":
            lat = None
        else:
            raise WeightspaceError(f"saved codec has unknown latent type {kind!r}.")
        return cls(spec, norm, lat)


def substate(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
