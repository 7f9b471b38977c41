"""Cost accounting: what generation saves over fine-tuning, in steps, seconds and FLOPs.

The claim a weight generator makes is "a forward pass instead of an optimisation run". It is
checked per held-out task against the three starts a user would otherwise fine-tune (START):

- ``shared``    the family's pretrained start (standard fine-tuning of a pretrained model);
- ``scratch``   a fresh initialisation with the zoo's recipe (training from scratch);
- ``zoo-best``  the zoo member with the lowest support loss (the strongest start; choosing it
                costs an evaluation of the zoo on the support set);

each on the support set and on the full training data (DATA): record the first step whose test
accuracy reaches the generated model's. The speedup is

    adaptation_speedup = fine-tuning seconds to reach the generated accuracy / generation seconds

where fine-tuning seconds include obtaining the start (zoo-best: ranking the zoo).
A task whose fine-tuning never reaches the target inside the budget is charged the whole budget,
and the result is flagged as a lower bound.

FLOPs are the usual dense-network approximation: a forward pass costs 2 x params per example,
a training step 6 x params per example (forward + backward). They ignore activations' own cost
and are only meant for comparing methods on the same architecture.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import torch

def forward_flops(n_params: int, examples: int) -> float:
    return 2.0 * n_params * examples


def training_flops(n_params: int, examples_seen: int) -> float:
    return 6.0 * n_params * examples_seen


def steps_to_match(grid: torch.Tensor, curve: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First grid step at which each task's accuracy curve reaches its target.

    ``grid``: (G,) increasing steps; ``curve``: (T, G) accuracy at those steps; ``target``: (T,).
    Returns (steps (T,), reached (T,) bool); an unreached task gets the last grid step.
    """
    hit = curve >= target[:, None]
    reached = hit.any(1)
    first = torch.where(reached, hit.float().argmax(1), torch.full_like(reached, grid.numel() - 1, dtype=torch.long))
    return grid[first], reached


@dataclass
class MatchCost:
    """Fine-tuning until it matches a generator, against that generator's own cost."""

    finetune_steps_to_match: float  # mean over tasks
    finetune_steps_to_match_median: float
    finetune_steps_to_match_quartiles: list[float]  # [q1, median, q3] over tasks
    finetune_seconds_to_match: float  # mean over tasks: start selection + steps x seconds per step
    finetune_seconds_to_match_quartiles: list[float]  # [q1, median, q3] over tasks
    generation_seconds: float  # mean over tasks, incl. support-set encoding
    adaptation_speedup: float  # finetune_seconds_to_match / generation_seconds
    speedup_is_lower_bound: bool  # some task never reached the target within the budget
    tasks_not_reached: int
    budget_steps: int
    seconds_per_step: float
    start_seconds: float  # choosing the zoo start, per task
    finetune_flops_to_match: float  # mean over tasks, approximate (see the module docstring)
    per_task_steps: list[int]

    def to_dict(self) -> dict:
        return asdict(self)


def match_cost(steps: torch.Tensor, reached: torch.Tensor, *, budget_steps: int, seconds_per_step: float,
               start_seconds: float, generation_seconds: float, n_params: int, batch_examples: int) -> MatchCost:
    """Combine per-task steps-to-match with measured timings into one summary."""
    steps_f = [float(s) for s in steps.tolist()]
    mean_steps = statistics.fmean(steps_f) if steps_f else 0.0
    seconds = start_seconds + mean_steps * seconds_per_step
    quartiles = _quartiles(steps_f)
    return MatchCost(
        finetune_steps_to_match=mean_steps,
        finetune_steps_to_match_median=quartiles[1],
        finetune_steps_to_match_quartiles=quartiles,
        finetune_seconds_to_match=seconds,
        finetune_seconds_to_match_quartiles=[start_seconds + q * seconds_per_step for q in quartiles],
        generation_seconds=generation_seconds,
        adaptation_speedup=seconds / generation_seconds if generation_seconds > 0 else float("inf"),
        speedup_is_lower_bound=bool((~reached).any()),
        tasks_not_reached=int((~reached).sum()),
        budget_steps=int(budget_steps),
        seconds_per_step=seconds_per_step,
        start_seconds=start_seconds,
        finetune_flops_to_match=training_flops(n_params, int(mean_steps * batch_examples)),
        per_task_steps=[int(s) for s in steps.tolist()],
    )


def _quartiles(values: list[float]) -> list[float]:
    """[q1, median, q3] (inclusive method: exact for two or three tasks); zeros without tasks."""
    if not values:
        return [0.0, 0.0, 0.0]
    if len(values) == 1:
        return [values[0]] * 3
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return [float(q1), float(q2), float(q3)]
