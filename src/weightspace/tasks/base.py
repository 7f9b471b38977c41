"""Task and TaskFamily: what a zoo member is trained on, and what a user brings for a new task.

A family is a deterministic function of its config: workers rebuild it from ``to_dict()``
instead of receiving pickled data. Every task of a family has the same input shape and number
of classes, so all its members live in one weight space. The family splits its tasks into zoo
tasks and held-out tasks, disjoint by construction, and the split is recorded in ``to_dict()``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Sequence

import numpy as np
import torch

from weightspace.config import to_dict
from weightspace.errors import WeightspaceError


@dataclass
class Task:
    task_id: str  # unique inside its family, e.g. "rot=37.50"
    family: str
    descriptor: tuple[float, ...]  # numeric description (angle, class-subset indicator, ...)
    description: str  # a short sentence a person would write
    x_train: torch.Tensor  # float32, (N, *input_shape)
    y_train: torch.Tensor  # int64, (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    support_x: torch.Tensor  # the few labelled examples a user would have (default <= 100)
    support_y: torch.Tensor
    n_classes: int
    metric: str = "accuracy"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def stratified_support(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a class-balanced support set of at most ``size`` examples, seeded."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per = max(1, size // len(classes))
    idx = []
    for c in classes:
        pool = np.flatnonzero(y == c)
        idx.append(rng.choice(pool, size=min(per, len(pool)), replace=False))
    idx = np.concatenate(idx)
    rng.shuffle(idx)
    return idx[:size]


def tensors_sha256(tensors: Iterable[torch.Tensor]) -> str:
    """sha256 of tensors' shapes and bytes, in order."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


class TaskCache:
    """A small LRU of built tasks.

    The image and signal families share one per class across instances: workers rebuild families
    from ``to_dict()``, and keying on the config lets a rebuilt family reuse tasks an earlier
    instance made (text families keep one each). Cached tensors are shared: treat a Task as read-only.
    """

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Any, Task] = OrderedDict()

    def get(self, key: Any, build: Callable[[], Task]) -> Task:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        task = build()
        self._items[key] = task
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return task

    def clear(self) -> None:
        self._items.clear()


class TaskFamily:
    """A set of related tasks with a recorded zoo / held-out split."""

    name: ClassVar[str]
    config_class: ClassVar[type]  # the dataclass of the family's options, read into ``self.cfg``

    input_shape: tuple[int, ...]
    n_classes: int
    descriptor_names: tuple[str, ...]

    def zoo_task_ids(self) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def heldout_task_ids(self) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def task(self, task_id: str) -> Task:  # pragma: no cover - interface
        raise NotImplementedError

    def training_task_ids(self) -> list[str]:
        """Every task a generator may train on without a zoo checkpoint of it: tasks as far from
        each held-out task as the zoo's are (a family's held-out policy). Default: the zoo's
        tasks. A combinatorial family (class subsets) offers its whole allowed space, since a
        task costs only a relabelling there."""
        return self.zoo_task_ids()

    def auxiliary_task_ids(self) -> list[str]:
        """Tasks of another kind than the zoo's that only widen what a generator trains on (never
        a zoo or held-out task, and far from every held-out task by construction): a hypernet
        with task_pool=family trains on all of them beside its sample of training_task_ids().
        Default: none; wordnet's ``concepts`` option offers named sub-concepts of its supersenses."""
        return []

    def descriptor_features(self, task_id: str) -> tuple[float, ...]:
        """Numeric features of a task's descriptor for conditioning (angle families override
        this with (cos, sin) so that 359 degrees sits next to 0); default: the descriptor."""
        return tuple(self.task(task_id).descriptor)

    def pretrain_task(self) -> Task:  # pragma: no cover - interface
        """A task with the family's input shape and class count for the shared pretrained start."""
        raise NotImplementedError

    def descriptor_features_of(self, descriptor: Sequence[float]) -> tuple[float, ...]:
        """Conditioning features of a raw descriptor (one value per ``descriptor_names``), for tasks
        the family has no id for, e.g. a new angle. The default is the descriptor itself."""
        values = tuple(float(v) for v in descriptor)
        if len(values) != len(self.descriptor_names):
            raise WeightspaceError(
                f"a {self.name} descriptor has {len(self.descriptor_names)} values "
                f"({', '.join(self.descriptor_names[:4])}{', ...' if len(self.descriptor_names) > 4 else ''}), got {len(values)}."
            )
        return values

    def config(self) -> dict[str, Any]:
        """Constructor arguments; ``make_family(name, **config())`` rebuilds the family."""
        return to_dict(self.cfg)

    def data_fingerprint(self) -> str:
        """sha256 of the first zoo task's data: a zoo records it, so a change in the data behind
        the same task ids (a new dataset version, a changed split) is caught, not silently paired."""
        if getattr(self, "_data_fingerprint", None) is None:
            self._data_fingerprint = self._fingerprint()
        return self._data_fingerprint

    def _fingerprint(self) -> str:
        task = self.task(self.zoo_task_ids()[0])
        return tensors_sha256((task.x_train, task.y_train, task.x_test, task.y_test))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": self.config(),
            "zoo_tasks": self.zoo_task_ids(),
            "heldout_tasks": self.heldout_task_ids(),
            "data_fingerprint": self.data_fingerprint(),
        }
