"""Uncertainty of accuracy differences over held-out tasks.

A difference of 0.001 in mean accuracy over 32 tasks means nothing without an interval. Two
methods evaluated on the same tasks are paired, so the interval is a paired bootstrap over
tasks: resample tasks with replacement, and take the mean of the per-task differences each time.
The percentile interval is reported (Efron & Tibshirani 1993, ch. 13); with few tasks it is
narrow-biased, which is why the report always states how many tasks it rests on.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from weightspace.errors import WeightspaceError


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n: int = 2000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """(mean of a - b, lower, upper) with a ``level`` percentile interval from ``n`` paired
    bootstrap resamples of the tasks. ``a[i]`` and ``b[i]`` are two methods' scores on task i."""
    if len(a) != len(b):
        raise WeightspaceError(f"a paired bootstrap needs scores on the same tasks; got {len(a)} and {len(b)}.")
    x = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if x.size == 0:
        raise WeightspaceError("a paired bootstrap needs at least one task; got none.")
    if not 0 < level < 1:
        raise WeightspaceError(f"the interval level must lie between 0 and 1; got {level}.")
    mean = float(x.mean())
    if x.size == 1 or np.all(x == x[0]):  # nothing to resample: every resample has the same mean
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(int(n), x.size))
    means = x[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return mean, float(lo), float(hi)


def difference(a: Sequence[float], b: Sequence[float], n: int = 2000, seed: int = 0) -> dict:
    """``paired_bootstrap`` as a JSON-ready dict, with the task count and whether 0 is excluded."""
    mean, lo, hi = paired_bootstrap(a, b, n=n, seed=seed)
    return {"mean_diff": mean, "lo": lo, "hi": hi, "level": 0.95, "n_tasks": len(a),
            "excludes_zero": bool(lo > 0 or hi < 0)}


def per_task_acc(entry: Mapping[str, Any]) -> list[float] | None:
    """A results.json method entry's per-task accuracies, or None where any is missing."""
    accs = [t.get("acc") for t in entry.get("per_task") or []]
    return accs if accs and all(a is not None for a in accs) else None


def entry_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict | None:
    """``difference`` of two method entries' per-task accuracies (None without per-task data)."""
    pa, pb = per_task_acc(a), per_task_acc(b)
    if pa is None or pb is None or len(pa) != len(pb):
        return None
    return difference(pa, pb)
