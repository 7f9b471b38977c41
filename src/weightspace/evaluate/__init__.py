"""Evaluate: the harness and the methods generated weights are judged beside.

Importing the stage imports every module that registers an evaluation baseline
(baseline_registry.BASELINES), so the registry is complete for the harness and for listings.
"""

from weightspace.evaluate import feature_baselines, merged, methods  # noqa: F401  (register their baselines)
