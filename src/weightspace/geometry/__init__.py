"""Geometry of weight space: how many directions a zoo uses, how its members connect, and which
layers the task moves.

- ``spectrum``: PCA spectrum of the flattened zoo; components for 90% / 99% of the variance.
- ``intrinsic_dim``: TwoNN and Levina–Bickel estimates from nearest-neighbour distances.
- ``connectivity``: loss / accuracy barriers on the straight line between two members,
  before and after weight matching.
- ``modularity``: per tensor and per layer: variance share, own dimension, descriptor R^2.
- ``descriptor_map``: a 2-D PCA map and whether weight-space neighbours share tasks.
- ``analysis``: all of the above for one zoo, raw and aligned (what `weightspace analyze` runs).
"""

from weightspace.geometry.connectivity import (
    BarrierSummary, InterpolationCurve, PairResult, barrier, interpolation_curve, lambda_grid, pair_connectivity,
    sample_pairs, zoo_connectivity,
)
from weightspace.geometry.descriptor_map import descriptor_clustering, pairwise_distances, pca_map
from weightspace.geometry.intrinsic_dim import IntrinsicDim, intrinsic_dimension, levina_bickel, two_nn
from weightspace.geometry.modularity import BlockStats, modularity
from weightspace.geometry.spectrum import Spectrum, components_for, pca_spectrum
from weightspace.geometry.analysis import AnalyzeConfig, analyze_weights, analyze_zoo  # noqa: E402  (uses the above)

__all__ = [
    "Spectrum", "pca_spectrum", "components_for",
    "IntrinsicDim", "intrinsic_dimension", "two_nn", "levina_bickel",
    "InterpolationCurve", "PairResult", "BarrierSummary", "barrier", "interpolation_curve", "lambda_grid",
    "pair_connectivity", "sample_pairs", "zoo_connectivity",
    "BlockStats", "modularity",
    "pca_map", "descriptor_clustering", "pairwise_distances",
    "AnalyzeConfig", "analyze_weights", "analyze_zoo",
]
