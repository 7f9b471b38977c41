"""Encode: weights <-> generator space (normalisation, tokens, PCA / autoencoder latents) and
conditions (descriptor, support-set encoders)."""

from weightspace.encode.autoencoder import AELatent
from weightspace.encode.codec import LATENTS, WeightCodec
from weightspace.encode.condition import (
    CONDITION_ENCODERS,
    ConditionEncoder,
    SupportSetEncoder,
    check_support,
    condition_encoder_from,
    make_condition_encoder,
)
from weightspace.encode.deepsets import DeepSetsSupportEncoder
from weightspace.encode.descriptor import DescriptorEncoder
from weightspace.encode.normalize import TensorNormalizer
from weightspace.encode.pca import PCALatent
from weightspace.encode.probe import ProbeSupportEncoder
from weightspace.encode.tokens import LayerTokenizer
from weightspace.encode.unconditional import NoCondition
from weightspace.encode import text_conditions as _text_conditions  # noqa: F401  registers text-support, text-description, text-both

__all__ = [
    "AELatent", "LATENTS", "WeightCodec", "CONDITION_ENCODERS", "ConditionEncoder", "SupportSetEncoder",
    "check_support", "condition_encoder_from", "make_condition_encoder", "DeepSetsSupportEncoder",
    "DescriptorEncoder", "TensorNormalizer", "PCALatent", "ProbeSupportEncoder", "LayerTokenizer",
    "NoCondition",
]
