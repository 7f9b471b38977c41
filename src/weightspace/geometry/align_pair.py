"""Align one checkpoint onto another (B permuted onto A), with the numbers that say how much it helped.

``align_pair`` permutes B's hidden units to match A's, by weight matching (Git Re-Basin: maximise
sum_t <A_t, P(B)_t>) or activation matching (correlation of hidden units on inputs ``x``), and
reports the matching objective before (identity permutation) and after, the L2 distance
||A - B|| before and after, and, when evaluation data is given, the accuracy and loss barriers
along the straight line A -> B before and after alignment (``geometry.connectivity``). The
aligned B computes exactly B's function.

``pair_arch`` finds the architecture of two plain checkpoint files: the ``arch`` record in their
safetensors metadata (``weightspace generate`` writes one, and so does ``weightspace align``), or
a name given by the caller, whose MLP widths are read from the tensors' shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from weightspace.errors import WeightspaceError
from weightspace.geometry.connectivity import interpolation_curve
from weightspace.nets.base import Architecture
from weightspace.symmetry.activation_matching import activation_correlations, activation_matching
from weightspace.symmetry.align_zoo import METHODS
from weightspace.symmetry.permute import apply_permutation
from weightspace.symmetry.weight_matching import weight_matching

Params = Mapping[str, torch.Tensor]


@dataclass
class PairAlignment:
    aligned: dict[str, torch.Tensor]  # B permuted onto A
    perms: dict[str, torch.Tensor]  # per group: new unit j of B is old unit perms[g][j]
    method: str
    objective_name: str
    objective_before: float
    objective_after: float
    distance_before: float  # ||A - B||_2 over all tensors
    distance_after: float
    barriers: dict[str, dict[str, float]] = field(default_factory=dict)  # {"before"|"after": {"acc", "loss"}}

    def summary(self) -> dict[str, Any]:
        return {"method": self.method, "objective": self.objective_name,
                "objective_before": self.objective_before, "objective_after": self.objective_after,
                "l2_before": self.distance_before, "l2_after": self.distance_after, "barriers": self.barriers}


def weight_objective(spec, a: Params, b: Params) -> float:
    """sum_t <a_t, b_t>: what weight matching maximises (the L2 distance falls as it rises)."""
    return float(sum((a[n].double() * b[n].double()).sum() for n in spec.names))


def l2_distance(spec, a: Params, b: Params) -> float:
    return float(sum(((a[n].double() - b[n].double()) ** 2).sum() for n in spec.names) ** 0.5)


def _mean_matched_correlation(corr: Mapping[str, torch.Tensor], perms: Mapping[str, torch.Tensor] | None) -> float:
    values = []
    for g, c in corr.items():
        idx = torch.arange(c.shape[0]) if perms is None else perms[g]
        values.append(c[torch.arange(c.shape[0]), idx])
    return float(torch.cat(values).mean()) if values else 0.0


def align_pair(arch: Architecture, reference: Params, params: Params, *, method: str = "weight",
               x: torch.Tensor | None = None, eval_data: tuple[torch.Tensor, torch.Tensor] | None = None,
               seed: int = 0, lambdas: torch.Tensor | None = None) -> PairAlignment:
    """Permute ``params`` (B) onto ``reference`` (A); ``x`` probes activation matching, ``eval_data``
    = (x, y) gives the barriers before and after."""
    spec = arch.spec()
    if method not in METHODS:
        raise WeightspaceError(f"unknown alignment method {method!r}; choose one of {', '.join(METHODS)}.")
    spec.validate(reference, where="reference weights (A)")
    spec.validate(params, where="weights to align (B)")
    a = {n: reference[n].float() for n in spec.names}
    b = {n: params[n].float() for n in spec.names}
    if method == "activation":
        if x is None:
            raise WeightspaceError("activation matching needs inputs; give evaluation data (a task or a data file).")
        perms = activation_matching(arch, a, b, x)
    else:
        perms = weight_matching(spec, a, b, seed=seed)
    aligned = apply_permutation(b, spec, perms)
    if method == "activation":
        corr = activation_correlations(arch, a, b, x)
        name = "mean correlation of matched hidden units"
        before, after = _mean_matched_correlation(corr, None), _mean_matched_correlation(corr, perms)
    else:
        name = "weight-matching objective sum<A, B>"
        before, after = weight_objective(spec, a, b), weight_objective(spec, a, aligned)
    result = PairAlignment(aligned, perms, method, name, before, after, l2_distance(spec, a, b), l2_distance(spec, a, aligned))
    if eval_data is not None:
        ex, ey = eval_data
        for label, other in (("before", b), ("after", aligned)):
            curve = interpolation_curve(arch, a, other, ex, ey, lambdas)
            result.barriers[label] = {"acc": curve.acc_barrier, "loss": curve.loss_barrier,
                                      "acc_a": float(curve.acc[0]), "acc_b": float(curve.acc[-1]),
                                      "acc_mid": float(curve.acc[len(curve.acc) // 2])}
    return result


# ----- the architecture of plain checkpoint files ----------------------------------------------------


def arch_from_metadata(meta: Mapping[str, str], where: str) -> Architecture | None:
    """The architecture recorded in a safetensors header's ``arch`` entry, or None."""
    from weightspace.nets import arch_from_dict

    text = meta.get("arch")
    if text is None:
        return None
    try:
        return arch_from_dict(json.loads(text))
    except (json.JSONDecodeError, TypeError, KeyError, AttributeError):
        raise WeightspaceError(f"{where}: its metadata entry 'arch' is not an architecture record ({text[:80]!r}).") from None


def mlp_from_shapes(tensors: Params, where: str, input_shape: Sequence[int] | None = None,
                    n_classes: int | None = None, **options: Any) -> Architecture:
    """An MLP whose widths are read from the shapes of ``fc0.weight``, ``fc1.weight``, ..."""
    from weightspace.nets import make_arch

    shapes = []
    while f"fc{len(shapes)}.weight" in tensors:
        shapes.append(tuple(tensors[f"fc{len(shapes)}.weight"].shape))
    if not shapes or any(len(s) != 2 for s in shapes):
        names = ", ".join(list(tensors)[:4])
        raise WeightspaceError(f"{where} does not look like a weightspace MLP (tensors fc0.weight, fc1.weight, ...; "
                               f"it holds {names}); map its names first or give --arch with its options.")
    hidden = tuple(s[0] for s in shapes[:-1])
    in_features, classes = shapes[0][1], shapes[-1][0]
    if input_shape is None:
        input_shape = (in_features,)
    if n_classes is not None and n_classes != classes:
        raise WeightspaceError(f"{where} has {classes} outputs, the task has {n_classes} classes.")
    return make_arch("mlp", input_shape=tuple(input_shape), n_classes=classes, hidden=hidden, **options)


def pair_arch(files: Sequence[tuple[str, Params, Mapping[str, str]]], arch_name: str | None = None,
              input_shape: Sequence[int] | None = None, n_classes: int | None = None,
              options: Mapping[str, Any] | None = None) -> tuple[Architecture, str]:
    """The architecture shared by checkpoint files ``(name, tensors, metadata)`` and how it was found."""
    from weightspace.nets import make_arch

    options = dict(options or {})
    if arch_name is None:
        found = [(name, arch_from_metadata(meta, name)) for name, _, meta in files]
        recorded = [(n, a) for n, a in found if a is not None]
        if not recorded:
            raise WeightspaceError(f"{files[0][0]} records no architecture in its metadata (weightspace generate and align "
                                   "write one); pass --arch mlp (widths are read from the tensors) or --arch cnn with --family.")
        (first_name, arch), others = recorded[0], recorded[1:]
        for name, other in others:
            if other.to_dict() != arch.to_dict():
                raise WeightspaceError(f"{first_name} and {name} record different architectures "
                                       f"({arch.to_dict()} vs {other.to_dict()}); they cannot be aligned.")
        if input_shape is not None and tuple(input_shape) != tuple(arch.input_shape):
            raise WeightspaceError(f"{first_name} is a network for inputs {tuple(arch.input_shape)}, the data are {tuple(input_shape)}.")
        return arch, f"metadata of {first_name}"
    if arch_name == "mlp" and "hidden" not in options:
        return mlp_from_shapes(files[0][1], files[0][0], input_shape, n_classes, **options), "--arch mlp, widths from the tensors"
    if input_shape is None or n_classes is None:
        raise WeightspaceError(f"--arch {arch_name} needs the input shape and classes; give --family F (and --task) as well.")
    return make_arch(arch_name, input_shape=tuple(input_shape), n_classes=n_classes, **options), f"--arch {arch_name}"


__all__ = ["PairAlignment", "align_pair", "pair_arch", "arch_from_metadata", "mlp_from_shapes",
           "weight_objective", "l2_distance", "METHODS"]
