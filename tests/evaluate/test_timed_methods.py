"""Method.add_timed: a seeded request timed in steady state (median of repeats, the output of the
previous call released first), one call for slow makers, and the weights of the last call kept."""

import time

import torch

from weightspace.evaluate import methods
from weightspace.evaluate.methods import Method


def _method() -> Method:
    return Method("m", "generator", "m", "m")


def test_one_call_by_default():
    calls = []
    m = _method()
    m.add_timed(lambda: calls.append(1) or {"w": torch.ones(2)}, flops=3.0, before=0.5)
    assert len(calls) == 1 and m.seconds[0] >= 0.5 and m.flops == [3.0]


def test_repeats_charge_the_median_and_keep_the_last_output():
    durations = iter([0.05, 0.001, 0.002, 0.001, 0.09])
    outputs = []

    def make():
        time.sleep(next(durations))
        outputs.append({"w": torch.full((2,), float(len(outputs)))})
        return outputs[-1]

    m = _method()
    m.add_timed(make, repeats=5)
    assert len(outputs) == 5
    assert m.weights[0] is outputs[-1]
    assert 0.0015 <= m.seconds[0] < 0.04  # the median: neither the slow first nor the slow last call


def test_the_previous_output_is_released_before_the_next_call():
    alive = []

    class Tracked(dict):
        def __del__(self):
            alive.remove(id(self))

    def make():
        out = Tracked(w=torch.zeros(1))
        alive.append(id(out))
        assert len(alive) == 1, "the previous call's weights are still held while the next is timed"
        return out

    m = _method()
    m.add_timed(make, repeats=3)
    assert len(m.weights) == 1


def test_a_slow_first_call_is_not_repeated(monkeypatch):
    monkeypatch.setattr(methods, "REPEAT_UNDER_SECONDS", 0.01)
    calls = []

    def make():
        calls.append(1)
        time.sleep(0.02)
        return {"w": torch.ones(1)}

    m = _method()
    m.add_timed(make, repeats=5)
    assert len(calls) == 1 and m.seconds[0] >= 0.02
