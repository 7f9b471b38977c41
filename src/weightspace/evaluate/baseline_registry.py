"""Evaluation baselines by name: what the harness runs beside the generators, each with a pretty
name and the paper it follows (the reference and fine-tuning are not here: they start from each
run's generators and the zoo's own start, harness.py).

A baseline is a builder ``build(ctx, ranked, cfg) -> list[Method]`` (the ZooContext, the members
ranked by support loss, the EvalConfig), registered in the module that defines it with

    @register_baseline(name, pretty=..., paper=..., applies=..., position=...)

- ``applies(ctx) -> bool``: what the zoo must offer (a declared capability of its architecture, a
  shared start, ...). The harness asks this, never the architecture's name.
- ``enabled(cfg) -> bool``: the EvalConfig switch that turns it off (default: always on).
- ``position``: where its methods stand among the baselines in results.json. Recorded results
  and their tests read that order, so it is declared rather than left to import order.

``weightspace.evaluate`` imports every module that registers one, so the registry is complete
whenever anything of the evaluation stage is imported.
"""

from __future__ import annotations

from typing import Callable

from weightspace.registry import REQUIRED, Entry, Registry, always

Builder = Callable[..., list]  # (ctx, ranked, cfg) -> list[Method]

BASELINES: Registry[Builder] = Registry("baseline", extras={"applies": REQUIRED, "enabled": always,
                                                            "position": REQUIRED})
register_baseline = BASELINES.register


def ordered_baselines() -> list[Entry[Builder]]:
    """Every baseline in its results.json order."""
    return sorted(BASELINES.entries(), key=lambda e: e.extras["position"])


def applicable_baselines(ctx, cfg) -> list[Entry[Builder]]:
    """The baselines this zoo supports and ``cfg`` asks for, in their results.json order."""
    return [e for e in ordered_baselines() if e.extras["enabled"](cfg) and e.extras["applies"](ctx)]
