"""Condition encoders: what a generator is told about the task it should produce weights for.

A ConditionEncoder turns a task into a fixed-size vector (``dim`` entries):

- ``descriptor`` (descriptor.py): the family's numeric descriptor (an angle, a class subset),
  standardised over the zoo. An oracle a user rarely has, useful as an upper bound.
- support-set encoders (subclasses of SupportSetEncoder): a permutation-invariant summary of
  the few labelled examples a user brings. ``support-probe`` (probe.py) is training-free;
  ``support-deepsets`` (deepsets.py) is learned jointly with the generator.
- text encoders (text_conditions.py): frozen MiniLM embeddings of a support set's sentences
  (``text-support``) or of ``Task.description`` (``text-description``, kind ``"text"``), registered
  like the others; generators only see the vector, so nothing else changes.

Every encoder registers in ``CONDITION_ENCODERS`` with a pretty name and the paper it follows.

Encoders are fitted on the zoo (standardisation statistics, anchors), saved inside the
generator (``config()`` JSON + ``state()`` tensors) and rebuilt by ``condition_encoder_from``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import torch

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture
from weightspace.registry import Registry
from weightspace.tasks.base import Task

# Each encoder module registers its class with @register_condition(name, pretty=, paper=); the
# registry writes ``name`` onto the class, which saves it in config() for condition_encoder_from.
CONDITION_ENCODERS: Registry[type["ConditionEncoder"]] = Registry("condition", stamp=("name",))
register_condition = CONDITION_ENCODERS.register


class ConditionEncoder:
    name: ClassVar[str]  # written by @register_condition
    kind: ClassVar[str]  # "support" | "descriptor" | "text"
    trainable: ClassVar[bool] = False  # has parameters a generator should train jointly
    dim: int

    @classmethod
    def create(cls, arch: Architecture, **cfg: Any) -> "ConditionEncoder":
        """An unfitted encoder for ``arch``'s inputs and classes, with encoder-specific options."""
        raise NotImplementedError

    def fit(self, arch: Architecture, params: Mapping[str, torch.Tensor], tasks: Sequence[Task],
            family: Any = None) -> "ConditionEncoder":
        """Fit on the zoo: ``params`` stacked members, ``tasks[i]`` the task of member i."""
        raise NotImplementedError

    def encode(self, task_or_support: Task | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """(dim,) condition of one task or of one (x, y) support set."""
        raise NotImplementedError

    def encode_tasks(self, tasks: Sequence[Task]) -> torch.Tensor:
        """(len(tasks), dim) codes; members of one task share their task's code, encoded once."""
        codes = {t.task_id: self.encode(t) for t in unique_tasks(tasks)}
        return torch.stack([codes[t.task_id] for t in tasks])

    # ----- persistence -----------------------------------------------------------------------
    def embedding_frame(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mean, std) such that ``cond * std + mean`` is the sentence embedding a condition was made
        from, for conditions that are a standardised embedding in the frozen base's feature space
        (text-description); None for every other."""
        return None

    def config(self) -> dict:
        raise NotImplementedError

    def state(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @classmethod
    def from_state(cls, config: Mapping, state: Mapping[str, torch.Tensor]) -> "ConditionEncoder":
        raise NotImplementedError


class SupportSetEncoder(ConditionEncoder):
    """Encodes a labelled support set; the result does not depend on the order of examples."""

    kind = "support"

    def __init__(self, input_shape: Sequence[int], n_classes: int):
        self.input_shape = tuple(int(s) for s in input_shape)
        self.n_classes = int(n_classes)

    def encode_support(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, dim) codes of B support sets of equal size: x (B, S, *input_shape), y (B, S)."""
        raise NotImplementedError

    def encode(self, task_or_support) -> torch.Tensor:
        x, y = check_support(*support_of(task_or_support), self.input_shape, self.n_classes)
        with torch.no_grad():
            return self.encode_support(x[None], y[None])[0]


def unique_tasks(tasks: Sequence[Task]) -> list[Task]:
    """One task per task id, in first-seen order (a zoo lists a task once per member)."""
    return list({t.task_id: t for t in tasks}.values())


def support_of(task_or_support: Task | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The (x, y) support set of a task, or the pair itself."""
    if isinstance(task_or_support, Task):
        return task_or_support.support_x, task_or_support.support_y
    x, y = task_or_support
    return x, y


def check_support(x, y, input_shape: Sequence[int], n_classes: int, where: str = "support set") -> tuple[torch.Tensor, torch.Tensor]:
    """A validated (float32 x, int64 y) support set, or a WeightspaceError saying what is wrong."""
    x = torch.as_tensor(x)
    y = torch.as_tensor(y)
    input_shape = tuple(input_shape)
    if x.dim() >= 2 and tuple(x.shape[1:]) != input_shape and x.shape[1:].numel() == torch.Size(input_shape).numel():
        x = x.reshape(x.shape[0], *input_shape)  # flat rows of the right length are accepted as-is
    if x.dim() != len(input_shape) + 1 or tuple(x.shape[1:]) != input_shape:
        raise WeightspaceError(
            f"{where}: inputs have shape {tuple(x.shape)}, the architecture expects (N, {', '.join(map(str, input_shape))})."
        )
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise WeightspaceError(f"{where}: labels have shape {tuple(y.shape)}, expected ({x.shape[0]},) — one label per input.")
    if x.shape[0] == 0:
        raise WeightspaceError(f"{where} is empty; give at least one labelled example per class.")
    x = x.float()  # before the finite check: float64 values beyond float32's range become inf here
    if not torch.isfinite(x).all():
        raise WeightspaceError(f"{where}: inputs contain NaN or infinite values.")
    if torch.is_floating_point(y):
        if not torch.equal(y, y.round()):
            raise WeightspaceError(f"{where}: labels must be whole class indices, got fractional values.")
    y = y.long()
    if y.min() < 0 or y.max() >= n_classes:
        raise WeightspaceError(f"{where}: labels must lie in 0..{n_classes - 1}, got {int(y.min())}..{int(y.max())}.")
    return x, y


def make_condition_encoder(name: str, arch: Architecture, **cfg: Any) -> ConditionEncoder:
    return CONDITION_ENCODERS[name].create(arch, **cfg)


def condition_encoder_from(config: Mapping, state: Mapping[str, torch.Tensor]) -> ConditionEncoder:
    name = config.get("name")
    if name not in CONDITION_ENCODERS:
        raise WeightspaceError(f"saved generator uses an unknown condition encoder {name!r}.")
    return CONDITION_ENCODERS[name].from_state(config, state)

