"""Symmetries of weight spaces: permutations and ReLU rescaling that leave a network's function
unchanged, alignment of networks to a reference (weight and activation matching, whole zoos),
and canonical forms (ReLU scale, unit order, LoRA gauge). Everything reads the WeightSpec."""

from weightspace.symmetry.activation_matching import activation_matching
from weightspace.symmetry.align_zoo import align_zoo
from weightspace.symmetry.canonical import (
    canonical_order,
    canonicalize,
    lora_canonical,
    normalize_relu_scale,
)
from weightspace.symmetry.permute import (
    apply_permutation,
    apply_scaling,
    compose_permutations,
    identity_permutation,
    invert_permutation,
    random_permutation,
    random_scaling,
)
from weightspace.symmetry.weight_matching import match_weights, weight_matching

__all__ = [
    "activation_matching",
    "align_zoo",
    "apply_permutation",
    "apply_scaling",
    "canonical_order",
    "canonicalize",
    "compose_permutations",
    "identity_permutation",
    "invert_permutation",
    "lora_canonical",
    "match_weights",
    "normalize_relu_scale",
    "random_permutation",
    "random_scaling",
    "weight_matching",
]
