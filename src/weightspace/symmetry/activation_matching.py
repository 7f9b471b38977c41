"""Activation matching: pair up hidden units whose post-activation outputs on the same inputs are
most correlated (Git Re-Basin's "activation matching"; Li et al. 2016, "Convergent learning").

A unit's activations do not depend on how the other layers' units are ordered, so every group is
solved independently: one LAP per group on the Pearson correlation matrix between the reference's
units and the other network's units. Convolution channels count every spatial position as a
sample. Statistics are accumulated over chunks of ``x``, so large probe sets fit in memory.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch.func import functional_call

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture
from weightspace.symmetry.weight_matching import solve_assignment


def hidden_activations(arch: Architecture, params: Mapping[str, torch.Tensor], x: torch.Tensor,
                       module: torch.nn.Module | None = None) -> list[torch.Tensor]:
    """Post-activation outputs of each permutation group, as ``(samples, units)`` matrices.

    The built-in architectures apply their activation module once per hidden layer, in group
    order; a forward hook on it collects those outputs. Anything else is refused.
    """
    spec = arch.spec()
    module = arch.module() if module is None else module
    act = getattr(module, "act", None)
    if act is None:
        raise WeightspaceError(f"activation matching does not support the {spec.arch} architecture; use weight matching.")
    outputs: list[torch.Tensor] = []
    hook = act.register_forward_hook(lambda _m, _inp, out: outputs.append(out))
    try:
        with torch.no_grad():
            functional_call(module, dict(params), (x,))
    finally:
        hook.remove()
    if len(outputs) != len(spec.groups) or any(o.shape[1] != g.size for o, g in zip(outputs, spec.groups)):
        raise WeightspaceError(f"activation matching could not locate the hidden units of the {spec.arch} architecture; use weight matching.")
    return [o.movedim(1, -1).reshape(-1, o.shape[1]) for o in outputs]


class _Moments:
    """Running sums for the correlation between two sets of units."""

    def __init__(self):
        self.n = 0
        self.sa = self.sb = self.saa = self.sbb = self.sab = 0.0

    def add(self, a: torch.Tensor, b: torch.Tensor) -> None:
        a, b = a.double(), b.double()
        self.n += a.shape[0]
        self.sa = self.sa + a.sum(0)
        self.sb = self.sb + b.sum(0)
        self.saa = self.saa + (a * a).sum(0)
        self.sbb = self.sbb + (b * b).sum(0)
        self.sab = self.sab + a.T @ b

    def correlation(self) -> torch.Tensor:
        ma, mb = self.sa / self.n, self.sb / self.n
        cov = self.sab / self.n - torch.outer(ma, mb)
        sd_a = (self.saa / self.n - ma * ma).clamp_min(0).sqrt()
        sd_b = (self.sbb / self.n - mb * mb).clamp_min(0).sqrt()
        denom = torch.outer(sd_a, sd_b)
        # A dead unit (constant output) correlates with nothing; score it 0 rather than NaN.
        return torch.where(denom > 1e-12, cov / denom.clamp_min(1e-12), torch.zeros_like(cov))


def activation_correlations(arch: Architecture, reference: Mapping[str, torch.Tensor],
                            params: Mapping[str, torch.Tensor], x: torch.Tensor,
                            batch: int = 1024) -> dict[str, torch.Tensor]:
    """Per group, the (size, size) correlation between reference unit j and params unit k."""
    spec = arch.spec()
    if x.shape[0] == 0:
        raise WeightspaceError("activation matching needs at least one input example.")
    if tuple(x.shape[1:]) != tuple(arch.input_shape):
        raise WeightspaceError(f"activation matching inputs have shape {tuple(x.shape[1:])}, the network takes {tuple(arch.input_shape)}.")
    moments = [_Moments() for _ in spec.groups]
    module = arch.module()
    for start in range(0, x.shape[0], batch):
        chunk = x[start:start + batch]
        ref_out = hidden_activations(arch, reference, chunk, module)
        for mom, a, b in zip(moments, ref_out, hidden_activations(arch, params, chunk, module)):
            mom.add(a, b)
    return {g.name: mom.correlation() for g, mom in zip(spec.groups, moments)}


def activation_matching(arch: Architecture, reference: Mapping[str, torch.Tensor],
                        params: Mapping[str, torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Permutations such that ``params``' units line up with the reference's most correlated units."""
    spec = arch.spec()
    spec.validate(reference, where="reference weights")
    spec.validate(params, where="weights to align")
    corr = activation_correlations(arch, reference, params, x)
    return {g.name: torch.from_numpy(solve_assignment(corr[g.name].numpy(), g.blocks)).long() for g in spec.groups}
