import math

import torch

from weightspace.evaluate.cost import forward_flops, match_cost, steps_to_match, training_flops


def test_steps_to_match_first_reaching_step_and_unreached():
    grid = torch.tensor([0, 10, 20, 30])
    curve = torch.tensor([[0.5, 0.6, 0.8, 0.9],
                          [0.9, 0.9, 0.9, 0.9],
                          [0.1, 0.2, 0.3, 0.4]])
    target = torch.tensor([0.8, 0.7, 0.5])
    steps, reached = steps_to_match(grid, curve, target)
    assert steps.tolist() == [20, 0, 30]
    assert reached.tolist() == [True, True, False]


def test_match_cost_speedup_arithmetic():
    steps = torch.tensor([20, 40])
    reached = torch.tensor([True, True])
    c = match_cost(steps, reached, budget_steps=100, seconds_per_step=0.01, start_seconds=0.05,
                   generation_seconds=0.005, n_params=1000, batch_examples=64)
    assert c.finetune_steps_to_match == 30
    assert math.isclose(c.finetune_seconds_to_match, 0.05 + 30 * 0.01)
    assert math.isclose(c.adaptation_speedup, 0.35 / 0.005)
    assert not c.speedup_is_lower_bound and c.tasks_not_reached == 0
    assert c.finetune_flops_to_match == 6 * 1000 * 30 * 64


def test_unreached_task_makes_a_lower_bound():
    c = match_cost(torch.tensor([100, 10]), torch.tensor([False, True]), budget_steps=100,
                   seconds_per_step=0.1, start_seconds=0.0, generation_seconds=1.0, n_params=10,
                   batch_examples=1)
    assert c.speedup_is_lower_bound and c.tasks_not_reached == 1
    assert math.isclose(c.adaptation_speedup, 5.5)


def test_flops():
    assert forward_flops(100, 3) == 600
    assert training_flops(100, 3) == 1800
