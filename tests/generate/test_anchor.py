"""hypernet anchor=λ (L2-SP): the task objective pays for every generated output's distance from
the output training starts at, so a strong anchor keeps the generator near its start."""

import pytest
import torch

from gen_helpers import ARCH, tiny_zoo
from weightspace.errors import WeightspaceError
from weightspace.generate import make_generator, zoo_data

OPTS = {"objective": "task", "output": "full", "warmup_steps": 0, "hidden": 16, "depth": 1, "steps": 60, "lr": 1e-2,
        "batch_tasks": 4, "batch_examples": 32}


def _distance_from_start(anchor: float) -> float:
    params, tasks, heldout = tiny_zoo()
    data = zoo_data.from_params(ARCH, params, tasks, "descriptor")
    start = make_generator("hypernet", **{**OPTS, "steps": 0}).fit(data)
    gen = make_generator("hypernet", **OPTS, anchor=anchor).fit(data)
    z = lambda g: g.codec.encode(g.sample(g.encode_condition(heldout[0]), deterministic=True))  # noqa: E731
    return float((z(gen) - z(start)).pow(2).mean())


def test_a_strong_anchor_keeps_the_outputs_near_where_training_started():
    free, anchored = _distance_from_start(0.0), _distance_from_start(100.0)
    assert free > 0 and anchored < 0.2 * free


def test_anchor_needs_the_task_objective():
    params, tasks, _ = tiny_zoo()
    data = zoo_data.from_params(ARCH, params, tasks, "descriptor")
    with pytest.raises(WeightspaceError, match="anchor"):
        make_generator("hypernet", objective="regression", anchor=1.0, steps=1).fit(data)
