"""Training-free support-set encoder: how well do a few fixed zoo members fit these examples?

K anchor members are picked from the zoo by farthest-point sampling (so they cover its tasks).
A support set's code is the log mean cross-entropy of each anchor on it, standardised over the
zoo's own support sets. An anchor trained on a task like the user's has a low loss there, so
similar tasks give similar profiles; averaging over examples makes the code independent of
their order, and it needs no training, so it works with closed-form generators too.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from weightspace.encode.condition import SupportSetEncoder, register_condition, unique_tasks
from weightspace.encode.functional import members_loss
from weightspace.encode.normalize import TensorNormalizer
from weightspace.errors import WeightspaceError
from weightspace.nets import arch_from_dict
from weightspace.nets.base import Architecture
from weightspace.tasks.base import Task


def farthest_points(flat: torch.Tensor, k: int) -> list[int]:
    """k row indices spread over the rows of ``flat``: start nearest the mean, add the farthest."""
    d_mean = ((flat - flat.mean(0)) ** 2).sum(1)
    chosen = [int(d_mean.argmin())]
    dist = ((flat - flat[chosen[0]]) ** 2).sum(1)
    while len(chosen) < min(k, flat.shape[0]):
        nxt = int(dist.argmax())
        chosen.append(nxt)
        dist = torch.minimum(dist, ((flat - flat[nxt]) ** 2).sum(1))
    return chosen


@register_condition("support-probe", pretty="support-set probe of zoo anchors",
                    paper="anchor models' losses as a task embedding, as Task2Vec embeds tasks with a probe "
                          "network (Achille et al. 2019); anchors by farthest-point sampling")
class ProbeSupportEncoder(SupportSetEncoder):

    def __init__(self, arch: Architecture, n_anchors: int = 32, anchors: Mapping[str, torch.Tensor] | None = None,
                 mean: torch.Tensor | None = None, std: torch.Tensor | None = None):
        super().__init__(arch.input_shape, arch.n_classes)
        self.arch = arch
        self.module = arch.module()
        self.n_anchors = int(n_anchors)
        self.anchors = dict(anchors) if anchors is not None else None
        self.mean, self.std = mean, std
        self.dim = 0 if mean is None else int(mean.shape[0])

    @classmethod
    def create(cls, arch: Architecture, n_anchors: int = 32, **_: Any) -> "ProbeSupportEncoder":
        if n_anchors < 1:
            raise WeightspaceError(f"the probe encoder needs at least one anchor, got n_anchors={n_anchors}.")
        return cls(arch, n_anchors)

    def fit(self, arch, params, tasks: Sequence[Task], family: Any = None) -> "ProbeSupportEncoder":
        spec = arch.spec()
        flat = TensorNormalizer.fit(spec, params).to_flat(params)
        idx = torch.tensor(farthest_points(flat, self.n_anchors))
        self.anchors = {k: v[idx].clone() for k, v in params.items()}
        self.mean, self.std = torch.zeros(len(idx)), torch.ones(len(idx))
        self.dim = len(idx)
        # Standardise with the profiles of the zoo's own support sets (one per distinct task).
        raw = torch.cat([self.profile(t.support_x[None], t.support_y[None]) for t in unique_tasks(tasks)])
        self.mean, self.std = raw.mean(0), raw.std(0, unbiased=False).clamp_min(1e-6)
        return self

    def profile(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, K) log mean cross-entropy of each anchor on each of B support sets."""
        b, s = y.shape
        with torch.no_grad():
            ce, _ = members_loss(self.module, self.anchors, x.reshape(b * s, *self.input_shape), y.reshape(-1))
        return ce.reshape(-1, b, s).mean(2).clamp_min(1e-6).log().T

    def encode_support(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.anchors is None:
            raise WeightspaceError("the probe encoder is not fitted; fit the generator on a zoo first.")
        return (self.profile(x, y) - self.mean) / self.std

    def config(self) -> dict:
        return {"name": self.name, "arch": self.arch.to_dict(), "n_anchors": self.n_anchors, "dim": self.dim}

    def state(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "std": self.std, **{f"anchor.{k}": v for k, v in self.anchors.items()}}

    @classmethod
    def from_state(cls, config: Mapping, state: Mapping[str, torch.Tensor]) -> "ProbeSupportEncoder":
        anchors = {k[len("anchor."):]: v for k, v in state.items() if k.startswith("anchor.")}
        return cls(arch_from_dict(config["arch"]), int(config["n_anchors"]), anchors, state["mean"], state["std"])
